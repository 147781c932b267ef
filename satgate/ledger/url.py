"""`ledger:` URLs from config.

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (options `synchronous`, `busy_timeout_ms`)
- `redis://[:password@]host:port/db`, `rediss://…` (TLS) — one Redis, shared by replicas
- `redis+sentinel://[:password@]sentinel:26379[,sentinel:26379…]/service[/db]` — the primary Sentinel names
- `redis+cluster://host:port`, `rediss+cluster://…` — Redis Cluster, given any node
Redis options: `timeout_ms` (per call, default 250), `max_connections` (default 64), `wait_replicas` (each write is
answered only once this many replicas hold it; default 1 behind Sentinel, else 0).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from satgate.ledger.base import Ledger
from satgate.ledger.redis_url import REDIS_SCHEMES, RedisSettings, redis_settings
from satgate.ledger.url_parts import LedgerUrlError, url_options

__all__ = [
    "LedgerUrlError",
    "RedisSettings",
    "is_redis_url",
    "open_ledger",
    "redis_settings",
    "sqlite_path",
    "validate_ledger_url",
]


def sqlite_path(url: str) -> tuple[Path, dict[str, str]]:
    parts = urlsplit(url)
    if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
        raise LedgerUrlError(f"ledger: {url!r} must look like sqlite:///relative.db or sqlite:////abs/path.db")
    return Path(parts.path[1:]), url_options(url, {"synchronous", "busy_timeout_ms"})


def is_redis_url(url: str) -> bool:
    return urlsplit(url).scheme in REDIS_SCHEMES


def validate_ledger_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        sqlite_path(url)
    elif scheme in REDIS_SCHEMES:
        redis_settings(url)
    else:
        raise LedgerUrlError(
            f"ledger: unsupported URL {url!r}; expected sqlite:///path.db, redis://host:port/db, rediss://…, "
            "redis+sentinel://host:26379/service or redis+cluster://host:port"
        )
    return url


def open_ledger(url: str) -> Ledger:
    validate_ledger_url(url)
    if urlsplit(url).scheme == "sqlite":
        from satgate.ledger.sqlite import SqliteLedger  # noqa: PLC0415 - backends load lazily

        path, options = sqlite_path(url)
        return SqliteLedger(
            path,
            synchronous=options.get("synchronous", "NORMAL"),
            busy_timeout_ms=int(options.get("busy_timeout_ms", "2000")),
        )
    from satgate.ledger.redis import RedisLedger  # noqa: PLC0415

    return RedisLedger.from_settings(redis_settings(url))
