"""The append-only, hash-chained audit log (SPEC: Audit): the chain itself, and one store per deployment — SQLite on
one host, a Redis Stream that Mint replicas share when the ledger is Redis."""

from __future__ import annotations

from pathlib import Path

from satgate.audit.chain import (
    CSV_FIELDS,
    EVENT_TYPES,
    GENESIS,
    AuditEvent,
    AuditLog,
    Once,
    audit_csv,
    canonical_json,
    chain_hash,
    first_break,
)
from satgate.audit.sqlite import SqliteAuditLog


def open_audit_log(ledger_url: str, sqlite_path: str | Path) -> AuditLog:
    """A Redis Stream when the ledger is Redis (Mint replicas share one chain), SQLite otherwise."""
    from satgate.ledger.url import is_redis_url  # noqa: PLC0415 - the ledger package imports nothing of ours here

    if is_redis_url(ledger_url):
        from satgate.audit.redis import RedisStreamAuditLog  # noqa: PLC0415 - redis only when used

        return RedisStreamAuditLog(ledger_url)
    return SqliteAuditLog(sqlite_path)


__all__ = [
    "CSV_FIELDS",
    "EVENT_TYPES",
    "GENESIS",
    "AuditEvent",
    "AuditLog",
    "Once",
    "SqliteAuditLog",
    "audit_csv",
    "canonical_json",
    "chain_hash",
    "first_break",
    "open_audit_log",
]
