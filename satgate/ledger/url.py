"""`ledger:` URLs from config.

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (options `synchronous`, `busy_timeout_ms`)
- `redis://[:password@]host:port/db`, `rediss://…` (TLS) — one Redis, shared by replicas
- `redis+cluster://host:port`, `rediss+cluster://…` — Redis Cluster, given any node
Redis options: `timeout_ms` (per call, default 250), `max_connections` (default 64).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from satgate.ledger.base import Ledger

_REDIS_SCHEMES = {"redis": False, "rediss": False, "redis+cluster": True, "rediss+cluster": True}
_REDIS_OPTIONS = {"timeout_ms", "max_connections"}


class LedgerUrlError(ValueError):
    pass


def _options(url: str, allowed: set[str]) -> dict[str, str]:
    options = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    unknown = set(options) - allowed
    if unknown:
        raise LedgerUrlError(f"ledger: unknown option(s) {', '.join(sorted(unknown))} in {url!r}")
    return options


def sqlite_path(url: str) -> tuple[Path, dict[str, str]]:
    parts = urlsplit(url)
    if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
        raise LedgerUrlError(f"ledger: {url!r} must look like sqlite:///relative.db or sqlite:////abs/path.db")
    return Path(parts.path[1:]), _options(url, {"synchronous", "busy_timeout_ms"})


def _positive_int(options: dict[str, str], name: str, default: int, url: str) -> int:
    text = options.get(name, str(default))
    if not text.isdigit() or int(text) == 0:
        raise LedgerUrlError(f"ledger: option {name} must be a positive integer in {url!r}")
    return int(text)


def redis_settings(url: str) -> tuple[str, bool, float, int]:
    """(client URL, cluster?, timeout seconds, max connections)"""
    parts = urlsplit(url)
    cluster = _REDIS_SCHEMES[parts.scheme]
    if not parts.hostname:
        raise LedgerUrlError(f"ledger: {url!r} names no host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise LedgerUrlError(f"ledger: {url!r} has an invalid port") from None
    options = _options(url, _REDIS_OPTIONS)
    timeout = _positive_int(options, "timeout_ms", 250, url) / 1000
    connections = _positive_int(options, "max_connections", 64, url)
    scheme = parts.scheme.removesuffix("+cluster")
    client_url = urlunsplit((scheme, parts.netloc, parts.path, urlencode({}), ""))
    return client_url, cluster, timeout, connections


def is_redis_url(url: str) -> bool:
    return urlsplit(url).scheme in _REDIS_SCHEMES


def validate_ledger_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        sqlite_path(url)
    elif scheme in _REDIS_SCHEMES:
        redis_settings(url)
    else:
        raise LedgerUrlError(
            f"ledger: unsupported URL {url!r}; expected sqlite:///path.db, redis://host:port/db, rediss://… "
            "or redis+cluster://host:port"
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

    client_url, cluster, timeout, connections = redis_settings(url)
    return RedisLedger.from_url(client_url, cluster=cluster, timeout=timeout, max_connections=connections)
