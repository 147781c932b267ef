"""Step 1's input: what the pipeline reads of one request, whichever transport carried it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CheckInput:
    method: str
    path: str  # as the client sent it, query included
    host: str
    headers: Mapping[str, str]  # lower-case names; a repeated header's values joined with ','
    source_ip: str = ""  # the downstream address Envoy saw
    context_extensions: Mapping[str, str] = field(default_factory=dict)  # the route's settings from Envoy
    body: bytes = b""  # what Envoy buffered (MCP routes)
