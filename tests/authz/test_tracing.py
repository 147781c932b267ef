"""A span per check, parented by the request's W3C traceparent, carrying the decision, tenant, token id, cost and
ledger latency — and never the token."""

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from authz_server.check import CheckPipeline, CheckSettings
from authz_server.transports.grpc import GrpcChecks
from satgate.routes import RouteTable
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier
from satgate.tracing import Tracing
from tests.ledgers import fresh_ledger

from .conftest import check_request, status_of

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_each_check_is_a_span_in_the_requests_trace(tmp_path, keyring):
    exported = InMemorySpanExporter()
    tracing = Tracing("satgate-authz", exported)
    pipeline = GrpcChecks(
        CheckPipeline(
            verifier=TokenVerifier(keyring),
            ledger=fresh_ledger(f"sqlite:///{tmp_path}/ledger.db"),
            routes=RouteTable(),
            settings=CheckSettings(),
            tracing=tracing,
        )
    )
    token = mint(keyring, "acme", [("budget", "3")]).token
    traced = {"traceparent": PARENT}
    assert status_of(await pipeline.check(check_request(token, headers=traced, context={"cost": "2"}))) == 200
    assert status_of(await pipeline.check(check_request(token, headers=traced, context={"cost": "2"}))) == 402
    assert status_of(await pipeline.check(check_request(None, path="/v1/x?secret=1"))) == 401
    tracing.flush()
    allowed, exhausted, anonymous = exported.get_finished_spans()

    assert allowed.name == "satgate.check" and allowed.kind is SpanKind.SERVER
    assert format(allowed.context.trace_id, "032x") == TRACE_ID  # a child of Envoy's request
    assert format(allowed.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert allowed.resource.attributes["service.name"] == "satgate-authz"
    attributes = dict(allowed.attributes)
    assert {k: attributes[k] for k in ("satgate.decision", "satgate.reason", "satgate.tenant", "satgate.cost")} == {
        "satgate.decision": 200,
        "satgate.reason": "allow",
        "satgate.tenant": "acme",
        "satgate.cost": 2,
    }
    assert attributes["satgate.credits.charged"] == 2 and attributes["satgate.credits.remaining"] == 1
    assert attributes["satgate.token_id"] and 0 < attributes["satgate.ledger.seconds"] < 5
    assert dict(exhausted.attributes)["satgate.decision"] == 402 and exhausted.status.status_code is StatusCode.UNSET
    assert anonymous.parent is None and dict(anonymous.attributes)["url.path"] == "/v1/x"  # no query string
    for span in (allowed, exhausted, anonymous):
        assert not any(token in str(value) for value in span.attributes.values())  # never the token
    await pipeline.pipeline.close()
