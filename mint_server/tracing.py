"""A span per exchange (tracing.otlp_endpoint): `satgate.exchange`, a child of the caller's W3C `traceparent`, with
the provider, the outcome (issued, or the refusal's error), policy, tenant and token id — never a credential."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from satgate.tracing import Tracing

T = TypeVar("T")


class ExchangeSpan:
    def __init__(self, span: Span | None) -> None:
        self._span = span

    def done(self, result: T) -> T:
        """Records an issued token (an ExchangeResult) on the span and hands it back."""
        if self._span is not None:
            self._span.set_attributes(
                {
                    "satgate.outcome": "issued",
                    "satgate.policy": getattr(result, "policy", ""),
                    "satgate.tenant": getattr(result, "tenant", ""),
                    "satgate.token_id": getattr(result, "token_id", ""),
                }
            )
        return result


@contextlib.contextmanager
def exchange_span(tracing: Tracing | None, provider: str, headers: Mapping[str, str] | None) -> Iterator[ExchangeSpan]:
    if tracing is None:
        yield ExchangeSpan(None)
        return
    span = tracing.tracer.start_span(
        "satgate.exchange",
        context=tracing.parent(headers or {}),
        kind=SpanKind.SERVER,
        attributes={"satgate.provider": provider},
    )
    try:
        yield ExchangeSpan(span)
    except Exception as exc:
        status, policy = getattr(exc, "status", None), getattr(exc, "policy", None)
        attributes: dict[str, Any] = {"satgate.outcome": getattr(exc, "error", None) or type(exc).__name__}
        if status is not None:
            attributes["satgate.status"] = status
        if policy is not None:
            attributes.update({"satgate.policy": policy.name, "satgate.tenant": policy.tenant})
        span.set_attributes(attributes)
        if status is None or status >= 500:  # an outage; a refusal is the Mint doing its job
            span.set_status(Status(StatusCode.ERROR, str(attributes["satgate.outcome"])))
        raise
    finally:
        span.end()
