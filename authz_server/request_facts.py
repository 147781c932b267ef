"""Step 2: what the request is — normalised once from Envoy's CheckRequest."""

from __future__ import annotations

from envoy.service.auth.v3.external_auth_pb2 import CheckRequest

from satgate.caveats import RequestFacts
from satgate.urls import strip_port


def request_facts(request: CheckRequest, now: float, leeway: float) -> RequestFacts:
    attrs = request.attributes
    http = attrs.request.http
    return RequestFacts(
        now=now,
        method=http.method.upper(),
        path=http.path.partition("?")[0].partition("#")[0] or "/",
        host=strip_port(http.host.lower()),
        source_ip=attrs.source.address.socket_address.address,
        leeway_seconds=leeway,
    )
