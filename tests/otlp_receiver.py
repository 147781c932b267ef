"""An OTLP/HTTP trace receiver on loopback (what a collector's otlphttp receiver does): decodes each
ExportTraceServiceRequest with the OpenTelemetry protobufs and keeps the spans for a test to read."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    parent_span_id: str
    attributes: dict[str, Any]


def _value(any_value: dict[str, Any]) -> Any:
    ((kind, value),) = any_value.items()
    return int(value) if kind == "intValue" else value


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
                    self.send_error(415)
                    return
                receiver._keep(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _keep(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: MessageToDict(a.value) for a in resource_spans.resource.attributes}
            service = _value(resource["service.name"])
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: _value(MessageToDict(a.value)) for a in span.attributes}
                    self.spans.append(
                        ReceivedSpan(service, span.name, span.trace_id.hex(), span.parent_span_id.hex(), attributes)
                    )

    def wait_for(self, predicate, timeout: float = 15.0) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout
        while True:
            found = [s for s in list(self.spans) if predicate(s)]
            if found:
                return found
            assert time.monotonic() < deadline, f"no such span among {self.spans}"
            time.sleep(0.05)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
