import pytest

from satgate.caveats import CaveatSyntaxError, Paths

from .facts import facts


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/health", True), ("/v1/items", True), ("/v1/", True), ("/v1", False), ("/health/x", False), ("/v2/a", False)],
)
def test_exact_or_star_prefix(path, allowed):
    assert (Paths.parse("/v1/*,/health").check(facts(path=path)) is None) is allowed


def test_denial_names_the_caveat():
    assert Paths.parse("/a").check(facts(path="/b")).caveat == "paths"


def test_entries_must_be_absolute():
    with pytest.raises(CaveatSyntaxError):
        Paths.parse("v1/*")
