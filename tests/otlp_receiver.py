"""An OTLP/HTTP trace receiver on loopback (what a collector's otlphttp receiver does): reads each export request
in OTLP's JSON encoding (what the servers' exporter sends) and keeps the spans for a test to read."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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


def _attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _value(item["value"]) for item in items}


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path != "/v1/traces" or self.headers.get("content-type") != "application/json":
                    self.send_error(415)
                    return
                receiver._keep(json.loads(body))
                reply = b"{}"
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _keep(self, request: dict[str, Any]) -> None:
        for resource_spans in request.get("resourceSpans", []):
            service = _attributes(resource_spans["resource"]["attributes"])["service.name"]
            for scope in resource_spans.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    attributes = _attributes(span.get("attributes", []))
                    parent = span.get("parentSpanId", "")
                    self.spans.append(ReceivedSpan(service, span["name"], span["traceId"], parent, attributes))

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
