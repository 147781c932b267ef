import pytest

from satgate.caveats import CaveatSyntaxError, Expires

from .facts import NOW, facts


def test_holds_before_and_within_leeway():
    caveat = Expires.parse("2027-01-15T08:00:00Z")  # == NOW
    assert caveat.check(facts(now=NOW - 1, leeway_seconds=0)) is None
    assert caveat.check(facts(now=NOW + 29, leeway_seconds=30)) is None


def test_fails_at_expiry_with_401():
    denial = Expires.parse("2027-01-15T08:00:00Z").check(facts(now=NOW, leeway_seconds=0))
    assert (denial.status, denial.error) == (401, "expired")
    assert Expires.parse("2027-01-15T08:00:00Z").check(facts(now=NOW + 30, leeway_seconds=30)) is not None


@pytest.mark.parametrize(
    "value", ["2027-01-15 08:00:00Z", "2027-01-15T08:00:00+00:00", "2027-01-15", "soon", "2027-13-15T08:00:00Z"]
)
def test_only_rfc3339_utc(value):
    with pytest.raises(CaveatSyntaxError):
        Expires.parse(value)


def test_fractional_seconds():
    assert Expires.parse("2027-01-15T08:00:00.5Z").at == NOW + 0.5
