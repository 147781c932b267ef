"""The SPEC's decision table, in process: every outcome, its status, body and headers."""

import json
import time

import pytest
from google.protobuf.json_format import MessageToDict

from satgate.timefmt import format_utc
from satgate.tokens.mint import attenuate, mint

from .conftest import body_of, check_request, headers_of, status_of


def token(keyring, *caveats, tenant="acme"):
    return mint(keyring, tenant, list(caveats), attribute_keys=["department"]).token


async def test_missing_token_is_401_with_www_authenticate(pipeline):
    response = await pipeline.check(check_request(request_id="req-1"))
    assert status_of(response) == 401
    assert headers_of(response)["www-authenticate"] == 'Bearer realm="satgate", error="invalid_token"'
    assert headers_of(response)["content-type"] == "application/json"
    assert body_of(response) == {
        "error": "missing_token",
        "message": body_of(response)["message"],
        "request_id": "req-1",
    }
    assert response.status.code == 16  # UNAUTHENTICATED; the decision is data, not an RPC error


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Token abc", "bearer", ""])
async def test_non_bearer_credentials_are_missing_tokens(pipeline, authorization):
    response = await pipeline.check(check_request(headers={"authorization": authorization}))
    assert body_of(response)["error"] in {"missing_token", "malformed_token"}
    assert status_of(response) == 401


@pytest.mark.parametrize("junk", ["garbage", "AgE", "x" * 20000, "ey.JhbGciOi.JIUzI1NiJ9", "\u00e9\u00e9"])
async def test_junk_tokens_are_malformed(pipeline, junk):
    response = await pipeline.check(check_request(junk))
    assert (status_of(response), body_of(response)["error"]) == (401, "malformed_token")


async def test_good_token_is_allowed_with_injected_headers(pipeline, keyring):
    minted = mint(
        keyring, "acme", [("scope", "api:*"), ("budget", "10"), ("department", "eng")], attribute_keys=["department"]
    )
    response = await pipeline.check(check_request(minted.token, context={"scope": "api:read", "cost": "3"}))
    assert status_of(response) == 200
    assert response.status.code == 0
    ok = response.ok_response
    assert headers_of(response) == {
        "x-satgate-token-id": minted.identifier.token_id,
        "x-satgate-tenant": "acme",
        "x-satgate-credits-charged": "3",
        "x-satgate-credits-remaining": "7",
        "x-satgate-attr-department": "eng",
    }
    assert all(h.append_action == h.OVERWRITE_IF_EXISTS_OR_ADD for h in ok.headers)
    assert "authorization" in ok.headers_to_remove
    assert [(h.header.key, h.header.value) for h in ok.response_headers_to_add] == [
        ("x-satgate-credits-remaining", "7")
    ]
    assert MessageToDict(response.dynamic_metadata) == {
        "token_id": minted.identifier.token_id,
        "tenant": "acme",
        "charged": 3.0,
        "remaining": "7",
    }


async def test_client_sent_satgate_headers_are_dropped_or_overwritten(pipeline, keyring):
    response = await pipeline.check(
        check_request(
            token(keyring),
            headers={"x-satgate-tenant": "evil", "x-satgate-attr-department": "finance", "x-satgate-admin": "1"},
        )
    )
    ok = response.ok_response
    assert headers_of(response)["x-satgate-tenant"] == "acme"
    assert set(ok.headers_to_remove) == {"authorization", "x-satgate-attr-department", "x-satgate-admin"}


async def test_unbudgeted_token_reports_unlimited(pipeline, keyring):
    response = await pipeline.check(check_request(token(keyring)))
    assert headers_of(response)["x-satgate-credits-remaining"] == "unlimited"


async def test_wrong_scope_is_403_insufficient_scope(pipeline, keyring):
    response = await pipeline.check(
        check_request(token(keyring, ("scope", "api:read")), context={"scope": "api:write"})
    )
    assert (status_of(response), body_of(response)["error"]) == (403, "insufficient_scope")
    assert "www-authenticate" not in headers_of(response)


async def test_every_scope_caveat_must_cover_the_route(pipeline, keyring):
    child = attenuate(token(keyring, ("scope", "api:*")), [("scope", "api:read")])
    assert status_of(await pipeline.check(check_request(child, context={"scope": "api:read"}))) == 200
    denied = await pipeline.check(check_request(child, context={"scope": "api:write"}))
    assert body_of(denied)["error"] == "insufficient_scope"


@pytest.mark.parametrize(
    ("caveat", "request_kwargs", "which"),
    [
        (("methods", "GET"), {"method": "DELETE"}, "methods"),
        (("paths", "/v1/public/*"), {"path": "/v1/items?x=/v1/public/"}, "paths"),
        (("hosts", "*.internal"), {"host": "api.example.com:443"}, "hosts"),
        (("cidrs", "192.168.0.0/16"), {"source": "10.0.0.7"}, "cidrs"),
    ],
)
async def test_request_caveats_fail_with_403_naming_the_caveat(pipeline, keyring, caveat, request_kwargs, which):
    response = await pipeline.check(check_request(token(keyring, caveat), **request_kwargs))
    assert status_of(response) == 403
    assert body_of(response)["error"] == "caveat_failed"
    assert body_of(response)["caveat"] == which


async def test_request_caveats_hold_when_matched(pipeline, keyring):
    t = token(
        keyring, ("methods", "GET,POST"), ("paths", "/v1/*"), ("hosts", "api.example.com"), ("cidrs", "10.0.0.0/8")
    )
    assert status_of(await pipeline.check(check_request(t, path="/v1/items?q=1", host="API.example.com:8443"))) == 200


async def test_expired_and_not_yet_valid_are_401(make_pipeline, keyring):
    pipeline = make_pipeline(leeway_seconds=0)
    expired = token(keyring, ("expires", format_utc(time.time() - 5)), ("methods", "POST"))
    response = await pipeline.check(check_request(expired))  # also wrong method: expiry is reported first
    assert (status_of(response), body_of(response)["error"]) == (401, "expired")
    early = token(keyring, ("not_before", format_utc(time.time() + 3600)))
    assert body_of(await pipeline.check(check_request(early)))["error"] == "not_yet_valid"


async def test_leeway_applies(make_pipeline, keyring):
    just_expired = token(keyring, ("expires", format_utc(time.time() - 5)))
    assert status_of(await make_pipeline(leeway_seconds=30).check(check_request(just_expired))) == 200


async def test_budget_of_three_then_402(pipeline, keyring):
    t = token(keyring, ("budget", "3"))
    statuses = [status_of(await pipeline.check(check_request(t))) for _ in range(4)]
    assert statuses == [200, 200, 200, 402]
    denied = await pipeline.check(check_request(t, context={"cost": "2"}))
    assert body_of(denied) | {"message": None, "request_id": None} == {
        "error": "budget_exhausted",
        "cost": 2,
        "remaining": 0,
        "message": None,
        "request_id": None,
    }


async def test_retry_with_same_request_id_is_charged_once(pipeline, keyring):
    t = token(keyring, ("budget", "5"))
    for _ in range(3):
        response = await pipeline.check(check_request(t, request_id="retry-me", context={"cost": "2"}))
        assert headers_of(response)["x-satgate-credits-remaining"] == "3"
    sibling = attenuate(t, [("label", "other holder")])
    # Same x-request-id from a different token is a different request.
    assert (
        headers_of(await pipeline.check(check_request(sibling, request_id="retry-me", context={"cost": "2"})))[
            "x-satgate-credits-remaining"
        ]
        == "1"
    )


async def test_revoked_is_401_and_cascades_to_children(pipeline, keyring):
    minted = mint(keyring, "acme", [("budget", "10")])
    child = attenuate(minted.token, [("scope", "api:read")])
    assert status_of(await pipeline.check(check_request(child))) == 200
    await pipeline._ledger.revoke("acme", minted.identifier.token_id)
    for t in (minted.token, child):
        response = await pipeline.check(check_request(t))
        assert (status_of(response), body_of(response)["error"]) == (401, "revoked")


async def test_child_spend_drains_parent(pipeline, keyring):
    parent = token(keyring, ("budget", "4"))
    # Distinct labels make distinct children: identical attenuations are the same token and bucket.
    child_a = attenuate(parent, [("label", "agent a"), ("budget", "3")])
    child_b = attenuate(parent, [("label", "agent b"), ("budget", "3")])
    statuses = [status_of(await pipeline.check(check_request(t))) for t in (child_a, child_b) * 3]
    assert statuses.count(200) == 4
    assert statuses[4:] == [402, 402]
    assert status_of(await pipeline.check(check_request(parent))) == 402


async def test_route_tenant_must_match(pipeline, keyring):
    response = await pipeline.check(check_request(token(keyring, tenant="globex"), context={"tenant": "acme"}))
    assert (status_of(response), body_of(response)["caveat"]) == (403, "tenant")
    assert status_of(await pipeline.check(check_request(token(keyring), context={"tenant": "acme"}))) == 200


async def test_route_require_attribute(pipeline, keyring):
    eng = token(keyring, ("department", "eng"))
    context = {"require.department": "eng"}
    assert status_of(await pipeline.check(check_request(eng, context=context))) == 200
    for t in (
        token(keyring),
        token(keyring, ("department", "sales")),
        attenuate(eng, [("department", "sales")], attribute_keys=["department"]),
    ):
        response = await pipeline.check(check_request(t, context=context))
        assert (status_of(response), body_of(response)["caveat"]) == (403, "require.department")


async def test_server_side_route_table_and_context_extension_override(make_pipeline, keyring):
    pipeline = make_pipeline(
        rules=[
            {"settings": {"scope": "admin:all", "cost": "5"}, "path_prefix": "/admin/", "methods": frozenset({"POST"})},
            {"settings": {"scope": "api:read", "cost": "2"}, "path_prefix": "/v1/", "host": "*.example.com"},
        ]
    )
    t = token(keyring, ("scope", "api:read"), ("budget", "100"))
    ok = await pipeline.check(check_request(t, path="/v1/x", host="api.example.com"))
    assert headers_of(ok)["x-satgate-credits-charged"] == "2"
    assert (
        body_of(await pipeline.check(check_request(t, path="/admin/x", method="POST")))["error"] == "insufficient_scope"
    )
    # GET /admin/ matches no rule: no scope needed, default cost.
    assert headers_of(await pipeline.check(check_request(t, path="/admin/x")))["x-satgate-credits-charged"] == "1"
    overridden = await pipeline.check(check_request(t, path="/v1/x", host="api.example.com", context={"cost": "7"}))
    assert headers_of(overridden)["x-satgate-credits-charged"] == "7"


async def test_bad_route_settings_fail_closed(pipeline, keyring):
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'
    for context in ({"cost": "lots"}, {"scope": "a b"}, {"mcp": "maybe"}, {"mcp": "true", "pricing": "nope"}):
        response = await pipeline.check(check_request(token(keyring), context=context, body=body))
        error = body_of(response)["error"]
        if context.get("mcp") == "true":  # a JSON-RPC error once the route is known to be MCP
            error = error["data"]["error"]
        assert (status_of(response), error) == (503, "authz_unavailable")


async def test_store_down_denies_503_never_allows(pipeline, keyring):
    t = token(keyring, ("budget", "5"))
    await pipeline._ledger.close()  # the store is gone
    response = await pipeline.check(check_request(t))
    assert (status_of(response), body_of(response)["error"]) == (503, "authz_unavailable")
    assert response.status.code == 14


async def test_unexpected_failure_is_still_a_decision(pipeline, keyring, monkeypatch):
    def explode(_token):
        raise RuntimeError("bug")

    monkeypatch.setattr(pipeline._verifier, "verify", explode)
    response = await pipeline.check(check_request(token(keyring)))
    assert status_of(response) == 503


async def test_forged_signature_is_401_and_charges_nothing(pipeline, keyring):
    from satgate.tokens import wire

    t = token(keyring, ("budget", "1"))
    mac = wire.decode(t)
    forged = wire.encode(wire.WireMacaroon(mac.identifier, (b"budget = 1000",), mac.signature))
    response = await pipeline.check(check_request(forged))
    assert (status_of(response), body_of(response)["error"]) == (401, "invalid_signature")
    assert status_of(await pipeline.check(check_request(t))) == 200  # the real budget is untouched


async def test_decision_log_never_contains_the_token(make_pipeline, keyring, capsys):
    from satgate.logs import configure_logging

    configure_logging("info", component="test")
    pipeline = make_pipeline(decision_log="all")
    t = token(keyring, ("budget", "5"))
    await pipeline.check(check_request(t, path="/v1/items?secret=hunter2"))
    out = capsys.readouterr().out
    assert '"event": "decision"' in out
    assert t not in out and t[:40] not in out
    assert "hunter2" not in out


@pytest.mark.parametrize(("mode", "logged"), [("all", [200, 401]), ("deny", [401]), ("none", [])])
async def test_decision_log_modes(make_pipeline, keyring, capsys, mode, logged):
    from satgate.logs import configure_logging

    configure_logging("info", component="test")
    pipeline = make_pipeline(decision_log=mode)
    await pipeline.check(check_request(token(keyring)))
    await pipeline.check(check_request())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["status"] for line in lines if line["event"] == "decision"] == logged


async def test_a_dead_log_sink_does_not_stop_decisions(make_pipeline, keyring):
    import io

    import structlog

    sink = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()], logger_factory=structlog.WriteLoggerFactory(file=sink)
    )
    sink.close()  # e.g. the log collector went away
    pipeline = make_pipeline(decision_log="all")
    assert status_of(await pipeline.check(check_request(token(keyring)))) == 200
    assert status_of(await pipeline.check(check_request())) == 401
    structlog.reset_defaults()
