"""OpenTelemetry tracing for both servers, off unless `tracing.otlp_endpoint` is set: spans go to an OTLP/HTTP
collector in batches from a background thread, so a slow or absent collector never delays a decision. JSON
encoding: the protobuf exporter's OTLP modules clash with the older copies xds-protos installs. A span's parent is
the W3C `traceparent` of the request it is about (Envoy forwards the client's, or its own when Envoy traces), so a
check shows up inside the request's trace. Each server has its own provider, never the global one."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


class Tracing:
    def __init__(self, service: str, exporter: SpanExporter, *, sample_ratio: float = 1.0) -> None:
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": service}),
            sampler=ParentBased(TraceIdRatioBased(sample_ratio)),  # a sampled parent is always followed
        )
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer: Tracer = self._provider.get_tracer("satgate")

    @classmethod
    def otlp(cls, service: str, endpoint: str, *, sample_ratio: float = 1.0) -> Tracing:
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        return cls(service, OTLPSpanExporter(endpoint=endpoint, timeout=5), sample_ratio=sample_ratio)

    @staticmethod
    def parent(headers: Mapping[str, str]) -> Context:
        """The trace context a request carries (`traceparent`, `tracestate`); an empty one without them."""
        return _PROPAGATOR.extract(headers)

    def flush(self) -> None:
        self._provider.force_flush()

    def close(self) -> None:
        self._provider.shutdown()  # exports what is buffered
