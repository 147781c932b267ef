"""A span per exchange, in the caller's trace: issued with policy, tenant and token id; refused with the error —
never the JWT or the token."""

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from satgate.tracing import Tracing

from .conftest import oidc_policy, policies

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


async def test_exchanges_are_spans_in_the_callers_trace(idp, start_mint):
    mint_server = await start_mint(policies(oidc_policy(idp.issuer)))
    exported = InMemorySpanExporter()
    mint_server.service.tracing = Tracing("satgate-mint", exported)
    jwt = idp.token("agent-1", "satgate")
    headers = {"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"}
    issued = await mint_server.client.post("/api/mint/exchange", json={"credentials": jwt}, headers=headers)
    refused = await mint_server.client.post(
        "/api/mint/exchange", json={"credentials": idp.token("intruder", "satgate")}, headers=headers
    )
    assert (issued.status, refused.status) == (200, 403)
    mint_server.service.tracing.flush()
    ok, denied = exported.get_finished_spans()
    assert ok.name == denied.name == "satgate.exchange"
    assert format(ok.context.trace_id, "032x") == TRACE_ID == format(denied.context.trace_id, "032x")
    body = await issued.json()
    assert dict(ok.attributes) == {
        "satgate.provider": "jwt",
        "satgate.outcome": "issued",
        "satgate.policy": "agents",
        "satgate.tenant": "acme",
        "satgate.token_id": body["token_id"],
    }
    assert dict(denied.attributes) == {
        "satgate.provider": "jwt",
        "satgate.outcome": "no_matching_rule",
        "satgate.status": 403,
    }
    assert denied.status.status_code is StatusCode.UNSET  # a refusal is not an error of the Mint's
    assert not any(secret in str(dict(s.attributes)) for s in (ok, denied) for secret in (jwt, body["token"]))
