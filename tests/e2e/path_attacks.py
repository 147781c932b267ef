"""Paths that try to reach what a token or a route does not allow — encoded slashes and backslashes, dot segments
(plain, %2e, behind `;`, double-encoded), doubled slashes, case — sent byte for byte through Envoy. Whatever Envoy
and the check do with each, nothing may reach the upstream at a path the token's `paths` caveat, or its route's
scope, would refuse."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import unquote

from satgate.tokens.mint import mint

ALLOWED = "/v1/items/*"
ESCAPES = [
    "/v1/items/../premium/x",
    "/v1/items/%2e%2e/premium/x",
    "/v1/items/%2E%2E/premium/x",
    "/v1/items/.%2e/premium/x",
    "/v1/items/..;/premium/x",
    "/v1/items/%2e%2e;x/premium/x",
    "/v1/items/..%2fpremium/x",
    "/v1/items/..%2Fpremium/x",
    "/v1/items/%2f..%2f..%2fpremium/x",
    "/v1/items/..%5cpremium/x",
    "/v1/items/..%5Cpremium/x",
    "/v1/items/..\\premium/x",
    "/v1/items\\..\\premium/x",
    "/v1/items/%252e%252e/premium/x",
    "/v1/items/%252f..%252fpremium/x",
    "/v1/items/./../premium/x",
    "/v1/items//../premium/x",
    "//v1/items/../premium/x",
    "/v1/items/1/../../premium/x",
    "/v1/items/;/../premium/x",
    "/v1/items/1;/../../premium/x",
    "/V1/items/../premium/x",
    "/v1/ITEMS/1",
    "/v1/Items/../premium/x",
    "/v1/premium/x",
]


def send(port: int, path: str, token: str) -> tuple[int, dict]:
    """http.client sends the path byte for byte (httpx would resolve dot segments itself)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.putheader("authorization", f"Bearer {token}")
        connection.endheaders()
        response = connection.getresponse()
        raw = response.read()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        return response.status, body if isinstance(body, dict) else {}
    finally:
        connection.close()


def escapes(port: int, keyring) -> Iterator[str]:
    """Each attempt that reached the upstream where it should not, with what it reached; none is a pass.
    Two tokens: one limited by `paths = /v1/items/*` (any scope), one by scope api:read (premium needs
    api:premium)."""
    by_paths = mint(keyring, "acme", [("scope", "api:*"), ("paths", ALLOWED)]).token
    by_scope = mint(keyring, "acme", [("scope", "api:read")]).token
    for path in ESCAPES:
        for token, judge in ((by_paths, "paths"), (by_scope, "scope")):
            status, body = send(port, path, token)
            if status != 200:
                continue  # refused (403, 400), redirected (Envoy's answer to escaped slashes) or not routed
            reached = str(body.get("path", ""))
            outside = not reached.startswith("/v1/items/") if judge == "paths" else _leads_to_premium(reached)
            if outside or _another_reading(reached):
                yield f"{path!r} with the {judge}-limited token reached {reached!r}"


def _leads_to_premium(path: str) -> bool:
    return any(reading.lower().startswith("/v1/premium") for reading in _readings(path))


def _readings(path: str) -> list[str]:
    """As sent, decoded once and twice, backslashes as slashes, `;` parameters dropped, dot segments resolved."""
    found = []
    for layer in (path, unquote(path), unquote(unquote(path))):
        kept: list[str] = []
        for segment in (s.split(";", 1)[0] for s in layer.replace("\\", "/").split("/")[1:]):
            if segment == "..":
                kept = kept[:-1]
            elif segment not in (".", ""):
                kept.append(segment)
        found.append("/" + "/".join(kept))
    return found


def _another_reading(path: str) -> bool:
    """Some server would route `path` to another place than its segments say: a layer of decoding, a backslash or
    a `;` parameter turns up a dot segment, an empty one or another number of them."""
    count = len(path.split("/"))
    for layer in (path, unquote(path), unquote(unquote(path))):
        segments = [s.split(";", 1)[0] for s in layer.replace("\\", "/").split("/")]
        if len(segments) != count or any(s in (".", "..") for s in segments) or "" in segments[1:-1]:
            return True
    return False
