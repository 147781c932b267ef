"""The append-only, hash-chained audit log (SPEC: Audit): the chain itself, and one store per deployment — the
PostgreSQL control plane that every host shares, a Redis Stream that Mint replicas share when the ledger is Redis,
or SQLite on one host."""

from __future__ import annotations

from pathlib import Path

from satgate.audit.chain import (
    CATEGORIES,
    CSV_FIELDS,
    EVENT_TYPES,
    GENESIS,
    AuditEvent,
    AuditLog,
    Once,
    audit_csv,
    canonical_json,
    category_of,
    chain_hash,
    first_break,
)
from satgate.audit.sqlite import SqliteAuditLog


def open_audit_log(ledger_url: str, sqlite_path: str | Path, control_plane_url: str | None = None) -> AuditLog:
    """The control plane's database when it is PostgreSQL (every host shares it), else a Redis Stream when the
    ledger is Redis (Mint replicas share one chain), else a SQLite file."""
    from satgate.control_plane.url import sqlite_file  # noqa: PLC0415 - as the ledger's: loaded when opening
    from satgate.ledger.url import is_redis_url  # noqa: PLC0415 - the ledger package imports nothing of ours here

    if control_plane_url is not None and sqlite_file(control_plane_url) is None:
        from satgate.audit.sql import SqlAuditLog  # noqa: PLC0415 - SQLAlchemy only when used

        return SqlAuditLog.from_url(control_plane_url)

    if is_redis_url(ledger_url):
        from satgate.audit.redis import RedisStreamAuditLog  # noqa: PLC0415 - redis only when used

        return RedisStreamAuditLog(ledger_url)
    return SqliteAuditLog(sqlite_path)


__all__ = [
    "CATEGORIES",
    "CSV_FIELDS",
    "EVENT_TYPES",
    "GENESIS",
    "AuditEvent",
    "AuditLog",
    "Once",
    "SqliteAuditLog",
    "audit_csv",
    "canonical_json",
    "category_of",
    "chain_hash",
    "first_break",
    "open_audit_log",
]
