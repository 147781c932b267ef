"""Embedded ledger: SQLite in WAL mode, one IMMEDIATE transaction per debit, safe across processes.

Calls are synchronous on purpose: a debit is one read statement and one or two writes (~25 µs), cheaper
than a thread hop, and WAL lets other worker processes read meanwhile.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from satgate.ledger.base import (
    IDEMPOTENCY_WINDOW_SECONDS,
    Bucket,
    DebitRequest,
    DebitResult,
    LedgerUnavailable,
    Outcome,
)
from satgate.sqlite_db import enable_wal

# Idempotency rows are keyed by a time slot first: lookups check the current and previous slot (a window of
# at least IDEMPOTENCY_WINDOW_SECONDS) and expiry is a cheap range delete, with no second index to maintain.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    tenant TEXT NOT NULL, bucket_id TEXT NOT NULL, credit_limit INTEGER NOT NULL, spent INTEGER NOT NULL,
    PRIMARY KEY (tenant, bucket_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revocations (
    tenant TEXT NOT NULL, revocation_id TEXT NOT NULL, revoked_at REAL NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (tenant, revocation_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    slot INTEGER NOT NULL, request_hash BLOB NOT NULL,
    charged INTEGER NOT NULL, remaining INTEGER,
    PRIMARY KEY (slot, request_hash)) WITHOUT ROWID;
"""
_SWEEP_EVERY = 4096  # debits between sweeps of expired idempotency slots


def _request_hash(tenant: str, idempotency_key: str | None) -> bytes | None:
    """16 bytes instead of a ~70-character key: random request ids then dirty fewer B-tree pages (measured:
    ~12 µs less per debit). 128 bits keep collisions out of reach."""
    if idempotency_key is None:
        return None
    return hashlib.blake2b(f"{tenant}\0{idempotency_key}".encode(), digest_size=16).digest()


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


@functools.cache
def _read_sql(revocation_ids: int, buckets: int) -> str:
    """One statement for everything the decision needs: revoked?, a remembered debit, smallest balance."""
    wanted = ",".join("(?, ?)" for _ in range(buckets))
    return f"""
        WITH wanted (bucket_id, credit_limit) AS (VALUES {wanted})
        SELECT
            EXISTS (SELECT 1 FROM revocations WHERE tenant = ? AND revocation_id IN ({_placeholders(revocation_ids)})),
            seen.charged, seen.remaining,
            (SELECT min(wanted.credit_limit - coalesce(buckets.spent, 0))
               FROM wanted LEFT JOIN buckets ON buckets.tenant = ? AND buckets.bucket_id = wanted.bucket_id)
        FROM (SELECT 1) LEFT JOIN idempotency AS seen
          ON seen.slot IN (?, ?) AND seen.request_hash = ?
    """  # noqa: S608 - only '?' placeholders are interpolated


@functools.cache
def _revoked_sql(revocation_ids: int) -> str:
    return f"SELECT 1 FROM revocations WHERE tenant = ? AND revocation_id IN ({_placeholders(revocation_ids)}) LIMIT 1"  # noqa: S608


@functools.cache
def _spent_sql(buckets: int) -> str:
    return f"SELECT bucket_id, spent FROM buckets WHERE tenant = ? AND bucket_id IN ({_placeholders(buckets)})"  # noqa: S608


class SqliteLedger:
    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 2000) -> None:
        """synchronous=NORMAL in WAL survives any process crash (what 'acknowledged' needs here);
        FULL also survives power loss, at an fsync per debit."""
        if synchronous.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"ledger: synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            enable_wal(self._db, busy_timeout_ms)  # workers opening a new file together
            self._db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            with self._transaction() as db:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"ledger: cannot open SQLite database {path}: {exc}") from exc
        self._debits = 0

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    async def debit(self, request: DebitRequest) -> DebitResult:
        try:
            if not request.buckets:  # nothing to spend: a read, no write lock
                if self._any_revoked(self._db, request.tenant, request.revocation_ids):
                    return DebitResult(Outcome.REVOKED)
                return DebitResult(Outcome.DEBITED, charged=request.cost, remaining=None)
            return self._debit(request, time.time())
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"ledger: {exc}") from exc

    def _debit(self, req: DebitRequest, now: float) -> DebitResult:
        slot = int(now // IDEMPOTENCY_WINDOW_SECONDS)
        params: list[object] = []
        for bucket in req.buckets:
            params += (bucket.bucket_id, bucket.limit)
        request_hash = _request_hash(req.tenant, req.idempotency_key)
        params += (req.tenant, *req.revocation_ids, req.tenant, slot, slot - 1, request_hash)
        with self._transaction() as db:
            revoked, seen_charged, seen_remaining, remaining = db.execute(
                _read_sql(len(req.revocation_ids), len(req.buckets)), params
            ).fetchone()
            if revoked:
                return DebitResult(Outcome.REVOKED)
            if seen_charged is not None:
                return DebitResult(Outcome.DEBITED, charged=seen_charged, remaining=seen_remaining, replayed=True)
            if remaining < req.cost:
                return DebitResult(Outcome.INSUFFICIENT, charged=0, remaining=max(remaining, 0))
            if req.cost:
                for bucket in req.buckets:
                    db.execute(
                        "INSERT INTO buckets (tenant, bucket_id, credit_limit, spent) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (tenant, bucket_id) DO UPDATE SET spent = spent + excluded.spent",
                        (req.tenant, bucket.bucket_id, bucket.limit, req.cost),
                    )
            remaining -= req.cost
            if request_hash is not None:
                db.execute(
                    "INSERT OR REPLACE INTO idempotency (slot, request_hash, charged, remaining) VALUES (?, ?, ?, ?)",
                    (slot, request_hash, req.cost, remaining),
                )
            self._debits += 1
            if self._debits % _SWEEP_EVERY == 0:
                db.execute("DELETE FROM idempotency WHERE slot < ?", (slot - 1,))
        return DebitResult(Outcome.DEBITED, charged=req.cost, remaining=remaining)

    @staticmethod
    def _any_revoked(db: sqlite3.Connection, tenant: str, ids: tuple[str, ...]) -> bool:
        return db.execute(_revoked_sql(len(ids)), (tenant, *ids)).fetchone() is not None

    async def revoke(self, tenant: str, revocation_id: str, reason: str = "") -> bool:
        try:
            with self._transaction() as db:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO revocations (tenant, revocation_id, revoked_at, reason) VALUES (?, ?, ?, ?)",
                    (tenant, revocation_id, time.time(), reason),
                )
                return cursor.rowcount == 1
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"ledger: {exc}") from exc

    async def is_revoked(self, tenant: str, revocation_ids: tuple[str, ...]) -> bool:
        try:
            return self._any_revoked(self._db, tenant, revocation_ids)
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"ledger: {exc}") from exc

    async def remaining(self, tenant: str, buckets: tuple[Bucket, ...]) -> int | None:
        if not buckets:
            return None
        try:
            rows = self._db.execute(_spent_sql(len(buckets)), (tenant, *(b.bucket_id for b in buckets))).fetchall()
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"ledger: {exc}") from exc
        spent = dict(rows)
        return max(min(b.limit - spent.get(b.bucket_id, 0) for b in buckets), 0)

    async def close(self) -> None:
        self._db.close()
