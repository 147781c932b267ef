"""URL rules shared by config and trust policies."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def is_loopback_url(url: str) -> bool:
    """A loopback IP address (127.0.0.0/8, ::1) or `localhost`, which RFC 6761 reserves for loopback; never a
    name that merely starts with 127. (127.attacker.example resolves wherever its owner likes)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def https_unless_loopback(url: str) -> str:
    """Identity traffic crosses the network only over TLS; plain http is for a local IdP or STS."""
    scheme = urlsplit(url).scheme
    if scheme == "https" or (scheme == "http" and is_loopback_url(url)):
        return url
    raise ValueError(f"{url!r} must be an https:// URL (http:// only on loopback)")


def strip_port(host: str) -> str:
    if host.startswith("["):  # [v6]:port
        return host[1 : host.find("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host


def canonical_host(host: str) -> str:
    """How hosts compare — in the route index and the `hosts` caveat alike: lowercase, without a port and without
    DNS's trailing dot (`Admin.Example.com.:443` is `admin.example.com`), so no spelling of a name skips its rules."""
    return strip_port(host.lower()).rstrip(".")


def display_url(url: str) -> str:
    """The URL as it may be printed or logged: a password (it comes from a Secret) becomes ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))
