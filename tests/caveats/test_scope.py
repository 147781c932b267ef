import pytest

from satgate.caveats import CaveatSyntaxError, Scope
from satgate.caveats.scope import scope_matches

from .facts import facts


@pytest.mark.parametrize(
    ("pattern", "scope", "expected"),
    [
        ("*", "anything:at:all", True),
        ("api:*", "api:read", True),
        ("api:*", "api:capability:admin", True),
        ("api:*", "api", False),
        ("api:*", "apix:read", False),
        ("api:read", "api:read", True),
        ("api:read", "api:read:more", False),
        ("api:*:read", "api:x:read", False),  # '*' only special alone or trailing
    ],
)
def test_pattern_semantics(pattern, scope, expected):
    assert scope_matches(pattern, scope) is expected


def test_every_required_scope_must_be_matched():
    caveat = Scope.parse("api:read,mcp:*")
    assert caveat.check(facts(required_scopes=("api:read", "mcp:tool:search"))) is None
    denial = caveat.check(facts(required_scopes=("api:read", "api:write")))
    assert (denial.status, denial.error) == (403, "insufficient_scope")
    assert "api:write" in denial.message


def test_no_required_scope_holds():
    assert Scope.parse("api:read").check(facts()) is None


@pytest.mark.parametrize("value", ["api:", ":read", "api::read", "a b", "api:**", ","])
def test_rejects_bad_patterns(value):
    with pytest.raises(CaveatSyntaxError):
        Scope.parse(value)
