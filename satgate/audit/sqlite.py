"""The audit chain in SQLite (one host): the Mint's default store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from satgate.audit.chain import GENESIS, AuditEvent, canonical_json, chain_hash, first_break
from satgate.sqlite_db import open_sqlite


class SqliteAuditLog:
    def __init__(self, path: str | Path) -> None:
        self._db = open_sqlite(
            path,
            "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL,"
            " prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
        )

    async def append(self, event: AuditEvent) -> str:
        record = asdict(event)
        record["details"] = dict(event.details)
        self._db.execute("BEGIN IMMEDIATE")
        try:
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

    def head(self) -> int | None:
        row = self._db.execute("SELECT max(seq) FROM audit").fetchone()
        return row[0] if row else None

    def records_after(self, seq: int | None, limit: int = 500) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT seq, record, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (seq or 0, limit)
        ).fetchall()
        return [{"seq": s, **json.loads(record), "hash": digest} for s, record, digest in rows]

    def records(self) -> Iterator[tuple[int, dict[str, Any], str, str]]:
        for seq, record, prev, digest in self._db.execute(
            "SELECT seq, record, prev_hash, hash FROM audit ORDER BY seq"
        ):
            yield seq, json.loads(record), prev, digest

    def verify(self) -> int | None:
        return first_break(self.records())

    async def close(self) -> None:
        self._db.close()
