"""Redis `ledger:` URLs: one Redis, a primary behind Sentinel, or a Cluster (satgate/ledger/url.py lists them)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from satgate.ledger.url_parts import LedgerUrlError, url_options, whole_number

REDIS_SCHEMES = {"redis", "rediss", "redis+cluster", "rediss+cluster", "redis+sentinel"}
_REDIS_OPTIONS = {"timeout_ms", "max_connections", "wait_replicas"}


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where a Redis ledger is and how it is called: `client_url`, or behind Sentinel the `sentinels` asked for
    `service`'s primary on every new connection (with the primary's `password` and `db`)."""

    client_url: str
    cluster: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    password: str | None = None
    db: int = 0
    timeout: float = 0.25
    max_connections: int = 64
    wait_replicas: int = 0


def _sentinels(netloc: str, url: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` after any `:password@` (urlsplit reads only one host)."""
    found = []
    for node in netloc.rpartition("@")[2].split(","):
        host, colon, port = node.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise LedgerUrlError(f"ledger: {url!r}: each Sentinel must be host:port (e.g. sentinel-0:26379)")
        found.append((host.strip("[]"), int(port)))
    return tuple(found)


def redis_settings(url: str) -> RedisSettings:
    parts = urlsplit(url)
    options = url_options(url, _REDIS_OPTIONS)
    timeout = whole_number(options, "timeout_ms", 250, url) / 1000
    connections = whole_number(options, "max_connections", 64, url)
    if parts.scheme == "redis+sentinel":
        sentinels = _sentinels(parts.netloc, url)
        service, _slash, db = parts.path.strip("/").partition("/")
        if not service or (db and not db.isdigit()):
            raise LedgerUrlError(
                f"ledger: {url!r} must name Sentinel's service: redis+sentinel://host:26379/mymaster/0"
            )
        wait = whole_number(options, "wait_replicas", 1, url, least=0)
        return RedisSettings(url, False, sentinels, service, parts.password, int(db or 0), timeout, connections, wait)
    if not parts.hostname:
        raise LedgerUrlError(f"ledger: {url!r} names no host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise LedgerUrlError(f"ledger: {url!r} has an invalid port") from None
    cluster = parts.scheme.endswith("+cluster")
    wait = whole_number(options, "wait_replicas", 0, url, least=0)
    if cluster and wait:
        raise LedgerUrlError(
            f"ledger: wait_replicas is not supported on Redis Cluster in {url!r}; use redis+sentinel://… for "
            "writes acknowledged by a replica"
        )
    client_url = urlunsplit((parts.scheme.removesuffix("+cluster"), parts.netloc, parts.path, "", ""))
    return RedisSettings(client_url, cluster, timeout=timeout, max_connections=connections, wait_replicas=wait)
