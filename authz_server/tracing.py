"""A span per check (tracing.otlp_endpoint): named `satgate.check`, a child of the request's own trace (the W3C
`traceparent` among the headers Envoy sends), with the decision as attributes — never the token itself."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from authz_server.check_input import CheckInput
from authz_server.decision import Decision
from satgate.tracing import Tracing


def start_check(tracing: Tracing, request: CheckInput) -> Span:
    return tracing.tracer.start_span(
        "satgate.check",
        context=tracing.parent(request.headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "url.path": request.path.partition("?")[0]},
    )


def end_check(span: Span, decision: Decision) -> None:
    token = decision.token
    attributes: dict[str, Any] = {
        "satgate.decision": decision.status,
        "satgate.reason": decision.error or "allow",
        "satgate.enforced": decision.enforced,
        "satgate.credits.charged": decision.charged,
    }
    if token is not None:
        attributes.update({"satgate.tenant": token.tenant, "satgate.token_id": token.token_id})
    if decision.cost is not None:
        attributes["satgate.cost"] = decision.cost
    if decision.remaining is not None:
        attributes["satgate.credits.remaining"] = decision.remaining
    if decision.ledger_seconds is not None:
        attributes["satgate.ledger.seconds"] = decision.ledger_seconds
    span.set_attributes(attributes)
    if decision.status >= 500:  # an outage, not a refusal: refusals are the product working
        span.set_status(Status(StatusCode.ERROR, decision.error or ""))
    span.end()
