import pytest

from satgate.caveats import CaveatSyntaxError, Hosts

from .facts import facts


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.example.com", True),
        ("a.corp", True),
        ("x.y.corp", True),
        ("corp", False),
        ("evilcorp", False),
        ("api.example.com.evil", False),
    ],
)
def test_exact_or_wildcard_suffix(host, allowed):
    assert (Hosts.parse("API.example.com,*.corp").check(facts(host=host)) is None) is allowed


def test_star_allows_any():
    assert Hosts.parse("*").check(facts(host="whatever")) is None


@pytest.mark.parametrize("value", ["*corp", "a..*", "exa mple.com", "*.*.corp"])
def test_rejects_bad_patterns(value):
    with pytest.raises(CaveatSyntaxError):
        Hosts.parse(value)
