"""Embedded ledger: SQLite in WAL mode, one IMMEDIATE transaction per debit, safe across processes.

Calls are synchronous on purpose: a debit is a few indexed statements (tens of µs), cheaper than a
thread hop, and WAL lets readers in other worker processes proceed meanwhile.
"""

from __future__ import annotations

import functools
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    tenant TEXT NOT NULL, bucket_id TEXT NOT NULL, credit_limit INTEGER NOT NULL, spent INTEGER NOT NULL,
    PRIMARY KEY (tenant, bucket_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revocations (
    tenant TEXT NOT NULL, revocation_id TEXT NOT NULL, revoked_at REAL NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (tenant, revocation_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    tenant TEXT NOT NULL, request_key TEXT NOT NULL, expires_at REAL NOT NULL,
    charged INTEGER NOT NULL, remaining INTEGER,
    PRIMARY KEY (tenant, request_key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
"""
_SWEEP_EVERY = 4096  # debits between sweeps of expired idempotency rows


@functools.cache
def _in_list(count: int) -> str:
    return ",".join("?" * count)


class SqliteLedger:
    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 2000) -> None:
        """synchronous=NORMAL in WAL survives any process crash (what 'acknowledged' needs here);
        FULL also survives power loss, at an fsync per debit."""
        if synchronous.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"ledger: synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._db.execute("PRAGMA journal_mode = WAL")
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
            return self._debit(request, time.time())
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"ledger: {exc}") from exc

    def _debit(self, req: DebitRequest, now: float) -> DebitResult:
        with self._transaction() as db:
            if self._any_revoked(db, req.tenant, req.revocation_ids):
                return DebitResult(Outcome.REVOKED)
            if not req.buckets:
                return DebitResult(Outcome.DEBITED, charged=req.cost, remaining=None)
            if req.idempotency_key is not None:
                row = db.execute(
                    "SELECT charged, remaining FROM idempotency"
                    " WHERE tenant = ? AND request_key = ? AND expires_at > ?",
                    (req.tenant, req.idempotency_key, now),
                ).fetchone()
                if row is not None:
                    return DebitResult(Outcome.DEBITED, charged=row[0], remaining=row[1], replayed=True)
            spent = self._spent(db, req.tenant, req.buckets)
            remaining = min(b.limit - spent.get(b.bucket_id, 0) for b in req.buckets)
            if remaining < req.cost:
                return DebitResult(Outcome.INSUFFICIENT, charged=0, remaining=max(remaining, 0))
            if req.cost:
                db.executemany(
                    "INSERT INTO buckets (tenant, bucket_id, credit_limit, spent) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (tenant, bucket_id) DO UPDATE SET spent = spent + excluded.spent",
                    [(req.tenant, b.bucket_id, b.limit, req.cost) for b in req.buckets],
                )
            remaining -= req.cost
            if req.idempotency_key is not None:
                db.execute(
                    "INSERT OR REPLACE INTO idempotency (tenant, request_key, expires_at, charged, remaining) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (req.tenant, req.idempotency_key, now + IDEMPOTENCY_WINDOW_SECONDS, req.cost, remaining),
                )
            self._debits += 1
            if self._debits % _SWEEP_EVERY == 0:
                db.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
        return DebitResult(Outcome.DEBITED, charged=req.cost, remaining=remaining)

    @staticmethod
    def _any_revoked(db: sqlite3.Connection, tenant: str, ids: tuple[str, ...]) -> bool:
        row = db.execute(  # the IN list is only '?' placeholders
            f"SELECT 1 FROM revocations WHERE tenant = ? AND revocation_id IN ({_in_list(len(ids))}) LIMIT 1",  # noqa: S608
            (tenant, *ids),
        ).fetchone()
        return row is not None

    @staticmethod
    def _spent(db: sqlite3.Connection, tenant: str, buckets: tuple[Bucket, ...]) -> dict[str, int]:
        rows = db.execute(  # the IN list is only '?' placeholders
            f"SELECT bucket_id, spent FROM buckets WHERE tenant = ? AND bucket_id IN ({_in_list(len(buckets))})",  # noqa: S608
            (tenant, *(b.bucket_id for b in buckets)),
        ).fetchall()
        return dict(rows)

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
            spent = self._spent(self._db, tenant, buckets)
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"ledger: {exc}") from exc
        return max(min(b.limit - spent.get(b.bucket_id, 0) for b in buckets), 0)

    async def close(self) -> None:
        self._db.close()
