import pytest

from satgate.caveats import CaveatSyntaxError, Tools

from .facts import facts


def test_every_called_tool_must_match():
    caveat = Tools.parse("search,fetch_*")
    assert caveat.check(facts(mcp_tools=("search", "fetch_page"))) is None
    denial = caveat.check(facts(mcp_tools=("search", "delete_all")))
    assert (denial.status, denial.caveat) == (403, "tools")
    assert "delete_all" in denial.message


def test_requests_without_tool_calls_hold():
    assert Tools.parse("search").check(facts()) is None


def test_rejects_bad_patterns():
    with pytest.raises(CaveatSyntaxError):
        Tools.parse("se arch")
