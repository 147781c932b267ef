"""The audit chain in SQLite (one host): the Mint's default store."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from satgate.audit.chain import GENESIS, AuditEvent, Once, canonical_json, chain_hash, first_break
from satgate.sqlite_db import open_sqlite


class SqliteAuditLog:
    def __init__(self, path: str | Path) -> None:
        self._db = open_sqlite(
            path,
            "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL,"
            " prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS audit_once (key TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID",
        )

    async def append(self, event: AuditEvent, *, once: Once | None = None) -> str | None:
        record = asdict(event)
        record["details"] = dict(event.details)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if once is not None and not self._first_in_window(once):
                self._db.execute("ROLLBACK")
                return None
            row = self._db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = row[0] if row else GENESIS
            digest = chain_hash(prev, record)
            self._db.execute(
                "INSERT INTO audit (record, prev_hash, hash) VALUES (?, ?, ?)", (canonical_json(record), prev, digest)
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return digest

    def _first_in_window(self, once: Once) -> bool:
        """Inside the append's write transaction, so writers in other processes agree on who is first."""
        now = time.time()
        self._db.execute("DELETE FROM audit_once WHERE until <= ?", (now,))
        if self._db.execute("SELECT 1 FROM audit_once WHERE key = ?", (once.key,)).fetchone():
            return False
        self._db.execute("INSERT INTO audit_once (key, until) VALUES (?, ?)", (once.key, now + once.seconds))
        return True

    async def head(self) -> int | None:
        row = self._db.execute("SELECT max(seq) FROM audit").fetchone()
        return row[0] if row else None

    async def records_after(self, seq: int | None, limit: int = 500) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT seq, record, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (seq or 0, limit)
        ).fetchall()
        return [{"seq": s, **json.loads(record), "hash": digest} for s, record, digest in rows]

    async def records(self) -> list[tuple[int, dict[str, Any], str, str]]:
        return [
            (seq, json.loads(record), prev, digest)
            for seq, record, prev, digest in self._db.execute(
                "SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq"
            )
        ]

    async def verify(self) -> int | None:
        return first_break(await self.records())

    async def delete_before(self, seq: int) -> int:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            removed = self._db.execute("DELETE FROM audit WHERE seq < ?", (seq,)).rowcount
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return removed

    async def close(self) -> None:
        self._db.close()
