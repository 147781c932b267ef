"""Paths that servers read differently (SPEC: caveat `paths`, route matching). Envoy normalises the path before
the check (RFC 3986 dot segments, merged slashes, escaped slashes), and the check, the route table and the
upstream must then see one path. What survives that and that some upstream still reads as another path — a dot
segment hidden behind `;` parameters or a second layer of percent-encoding, an encoded or raw backslash or slash,
an empty segment, a NUL or control character — is refused rather than judged as the string it looks like."""

from __future__ import annotations

import re
from urllib.parse import unquote

_SUSPECT = re.compile(r"[;%\\]|//|/\.|[\x00-\x1f\x7f]")  # the fast path: nothing else can be read two ways
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c|00)", re.IGNORECASE)
_DOT_SEGMENTS = frozenset({".", ".."})


def ambiguity(path: str) -> str | None:
    """Why `path` (without its query) could reach an upstream as another path, or None when it cannot."""
    if _SUSPECT.search(path) is None:
        return None
    for layer in _decodings(path):  # as sent, then as servers that decode once or twice read it
        if _CONTROL.search(layer):
            return "a control character"
        if "\\" in layer:
            return "a backslash"
        if "//" in layer:
            return "an empty segment (//)"
        if _ENCODED_SEPARATOR.search(layer):
            return "an encoded slash, backslash or NUL"
        segments = [segment.split(";", 1)[0] for segment in layer.split("/")[1:]]
        if any(segment in _DOT_SEGMENTS for segment in segments):
            return "a dot segment"
        if "" in segments[:-1]:  # `/a/;x/b` is `/a//b` to a server that drops parameters
            return "an empty segment"
    return None


def _decodings(path: str) -> list[str]:
    """The path as sent, then decoded once and twice: servers that decode again read the later layers."""
    layers = [path]
    for _ in range(2):
        decoded = unquote(layers[-1], errors="surrogateescape")
        if decoded == layers[-1]:
            break
        layers.append(decoded)
    return layers
