"""`ledger:` URLs from config: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from satgate.ledger.base import Ledger


class LedgerUrlError(ValueError):
    pass


def sqlite_path(url: str) -> tuple[Path, dict[str, str]]:
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise LedgerUrlError(f"ledger: unsupported URL {url!r}; expected sqlite:///path/to/ledger.db")
    if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
        raise LedgerUrlError(f"ledger: {url!r} must look like sqlite:///relative.db or sqlite:////abs/path.db")
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(options) - {"synchronous", "busy_timeout_ms"}
    if unknown:
        raise LedgerUrlError(f"ledger: unknown option(s) {', '.join(sorted(unknown))} in {url!r}")
    return Path(parts.path[1:]), options


def validate_ledger_url(url: str) -> str:
    sqlite_path(url)
    return url


def open_ledger(url: str) -> Ledger:
    from satgate.ledger.sqlite import SqliteLedger  # noqa: PLC0415 - keep backends lazy

    path, options = sqlite_path(url)
    return SqliteLedger(
        path,
        synchronous=options.get("synchronous", "NORMAL"),
        busy_timeout_ms=int(options.get("busy_timeout_ms", "2000")),
    )
