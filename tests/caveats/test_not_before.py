import pytest

from satgate.caveats import CaveatSyntaxError, NotBefore

from .facts import NOW, facts


def test_holds_from_the_instant_minus_leeway():
    caveat = NotBefore.parse("2027-01-15T08:00:00Z")
    assert caveat.check(facts(now=NOW, leeway_seconds=0)) is None
    assert caveat.check(facts(now=NOW - 10, leeway_seconds=30)) is None


def test_fails_before_with_401():
    denial = NotBefore.parse("2027-01-15T08:00:00Z").check(facts(now=NOW - 31, leeway_seconds=30))
    assert (denial.status, denial.error) == (401, "not_yet_valid")


def test_rejects_bad_time():
    with pytest.raises(CaveatSyntaxError):
        NotBefore.parse("yesterday")
