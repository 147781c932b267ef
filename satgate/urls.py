"""URL rules shared by config and trust policies."""

from __future__ import annotations

from urllib.parse import urlsplit


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")


def https_unless_loopback(url: str) -> str:
    """Identity traffic crosses the network only over TLS; plain http is for a local IdP or STS."""
    scheme = urlsplit(url).scheme
    if scheme == "https" or (scheme == "http" and is_loopback_url(url)):
        return url
    raise ValueError(f"{url!r} must be an https:// URL (http:// only on loopback)")
