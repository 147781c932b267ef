"""The pipeline's side of issue 'holders cannot grant themselves anything': sealed grants on routes, attribute
headers only from the issuer, idempotency bound to the request it charged, refusal before work."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authz_server.responses import is_satgate_header
from satgate import mcp
from satgate.tokens.mint import attenuate, mint

from .conftest import body_of, check_request, headers_of, status_of

PREMIUM = {"cost": "5"}


def sealed(keyring, *caveats):
    return mint(keyring, "acme", list(caveats), attribute_keys=["department"]).token


async def test_an_appended_scope_does_not_open_a_scoped_route(pipeline, keyring):
    scopeless = sealed(keyring, ("budget", "10"))
    escalated = attenuate(scopeless, [("scope", "api:*")])
    for t in (scopeless, escalated):
        denied = await pipeline.check(check_request(t, context={"scope": "api:read"}))
        assert (status_of(denied), body_of(denied)["error"]) == (403, "insufficient_scope")
    assert status_of(await pipeline.check(check_request(escalated))) == 200  # unscoped routes still admit it
    granted = sealed(keyring, ("scope", "api:*"))
    assert status_of(await pipeline.check(check_request(granted, context={"scope": "api:read"}))) == 200


async def test_an_appended_attribute_neither_passes_require_nor_reaches_the_upstream(pipeline, keyring):
    forged = attenuate(sealed(keyring, ("budget", "10")), [("department", "eng")], attribute_keys=["department"])
    denied = await pipeline.check(check_request(forged, context={"require.department": "eng"}))
    assert (status_of(denied), body_of(denied)["caveat"]) == (403, "require.department")
    allowed = await pipeline.check(check_request(forged))
    assert status_of(allowed) == 200
    assert "x-satgate-attr-department" not in headers_of(allowed)
    issued = await pipeline.check(
        check_request(sealed(keyring, ("department", "eng")), context={"require.department": "eng"})
    )
    assert headers_of(issued)["x-satgate-attr-department"] == "eng"


async def test_a_scopeless_token_calls_mcp_tools_and_a_scoped_one_only_its_own(make_pipeline, keyring):
    pipeline = make_pipeline(pricing={"default": mcp.PricingTable()})
    call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search"}}).encode()
    seed_token = sealed(keyring, ("budget", "5"))  # as the seed documents' policies issue: no scope grant
    assert status_of(await pipeline.check(check_request(seed_token, context={"mcp": "true"}, body=call))) == 200
    narrowed = attenuate(seed_token, [("scope", "mcp:tool:fetch")])
    denied = await pipeline.check(check_request(narrowed, context={"mcp": "true"}, body=call))
    assert status_of(denied) == 403


async def test_a_cheap_request_id_replayed_on_expensive_requests_pays_full_price(pipeline, keyring):
    t = sealed(keyring, ("budget", "13"))
    assert status_of(await pipeline.check(check_request(t, request_id="R"))) == 200
    paid = [await pipeline.check(check_request(t, request_id="R", method="POST", path="/v1/premium", context=PREMIUM))]
    paid.append(
        await pipeline.check(check_request(t, request_id="R", method="POST", path="/v1/other", context=PREMIUM))
    )
    assert [headers_of(r)["x-satgate-credits-remaining"] for r in paid] == ["7", "2"]
    refused = await pipeline.check(check_request(t, request_id="R", method="POST", path="/v1/third", context=PREMIUM))
    assert (status_of(refused), body_of(refused)["remaining"]) == (402, 2)


@pytest.mark.parametrize(
    "other",
    [
        {"method": "POST"},
        {"path": "/v1/items?page=2"},
        {"host": "other.example.com"},
        {"context": {"cost": "1"}},
    ],
)
async def test_every_part_of_the_request_binds_the_record(pipeline, keyring, other):
    t = sealed(keyring, ("budget", "10"))
    first = await pipeline.check(check_request(t, request_id="R", context={"cost": "2"}))
    assert headers_of(first)["x-satgate-credits-remaining"] == "8"
    again = await pipeline.check(check_request(t, request_id="R", **{"context": {"cost": "2"}, **other}))
    assert status_of(again) == 200
    assert int(headers_of(again)["x-satgate-credits-remaining"]) < 8  # charged as the new request it is


async def test_a_true_retry_is_still_charged_once(pipeline, keyring):
    t = sealed(keyring, ("budget", "10"))
    for _ in range(3):
        retry = await pipeline.check(check_request(t, request_id="R", method="POST", path="/v1/x", context=PREMIUM))
        assert headers_of(retry)["x-satgate-credits-remaining"] == "5"


async def test_an_mcp_body_binds_the_record(make_pipeline, keyring):
    pipeline = make_pipeline(pricing={"default": mcp.PricingTable(tools={"cheap": 1, "dear": 4})})

    def call(tool):
        return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}}).encode()

    t = sealed(keyring, ("budget", "10"))
    for tool, remaining in (("cheap", "9"), ("cheap", "9"), ("dear", "5")):
        response = await pipeline.check(check_request(t, request_id="R", context={"mcp": "true"}, body=call(tool)))
        assert headers_of(response)["x-satgate-credits-remaining"] == remaining


@pytest.mark.parametrize("name", ["x-satgate_tenant", "x_satgate_tenant", "X-SATGATE-TENANT", "x_SatGate-attr_team"])
async def test_look_alike_satgate_headers_are_removed(pipeline, keyring, name):
    response = await pipeline.check(check_request(sealed(keyring), headers={name: "evil,demo"}))
    assert name in response.ok_response.headers_to_remove


@settings(max_examples=200)
@given(name=st.from_regex(r"[xX][-_][sS][aA][tT][gG][aA][tT][eE][-_][a-zA-Z0-9_-]{1,12}", fullmatch=True))
def test_every_name_that_folds_to_ours_is_ours(name):
    assert is_satgate_header(name)
    assert not is_satgate_header(name[:8] + "x" + name[9:])  # x-satgatx-…
