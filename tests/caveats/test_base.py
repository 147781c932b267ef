"""RequestFacts' hand-written copies equal dataclasses.replace field for field (a new field must be added there)."""

import dataclasses

from satgate.caveats import RequestFacts


def test_with_scopes_and_with_tools_are_replace():
    facts = RequestFacts(
        now=1.5,
        method="GET",
        path="/p",
        host="h",
        source_ip="10.0.0.1",
        required_scopes=("a",),
        mcp_tools=("t",),
        leeway_seconds=7.0,
    )
    assert facts.with_scopes(("x", "y")) == dataclasses.replace(facts, required_scopes=("x", "y"))
    assert facts.with_tools(("z",)) == dataclasses.replace(facts, mcp_tools=("z",))
    # every field is passed on: a field the copies forgot would take its default and differ here
    assert len(dataclasses.fields(RequestFacts)) == 8
