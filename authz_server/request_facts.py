"""Step 2: what the request is — normalised once from the transport's CheckInput."""

from __future__ import annotations

from authz_server.check_input import CheckInput
from satgate.caveats import RequestFacts
from satgate.urls import canonical_host


def request_facts(request: CheckInput, now: float, leeway: float) -> RequestFacts:
    return RequestFacts(
        now=now,
        method=request.method.upper(),
        path=request.path.partition("?")[0].partition("#")[0] or "/",
        host=canonical_host(request.host),
        source_ip=request.source_ip,
        leeway_seconds=leeway,
    )
