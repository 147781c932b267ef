"""The audit chain in the control-plane database, for deployments whose control plane is PostgreSQL: every Mint
replica and authz host appends to one chain. An append holds a transaction-scoped lock (PostgreSQL: an advisory
lock; SQLite: the write lock its first statement takes) while it reads the head and writes after it, so
concurrent writers on any number of hosts extend the chain one at a time."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from satgate.audit.chain import GENESIS, AuditEvent, Once, canonical_json, chain_hash, first_break
from satgate.control_plane.engine import create_engine
from satgate.control_plane.schema import audit, audit_once

_CHAIN_LOCK = 0x5A7A_A0D1  # pg_advisory_xact_lock key: SatGate's audit chain
_PAGE = 1000


class SqlAuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    @classmethod
    def from_url(cls, url: str) -> SqlAuditLog:
        """The servers check the schema at start (satgate db upgrade); this opens no connection yet."""
        return cls(create_engine(url))

    async def append(self, event: AuditEvent, *, once: Once | None = None) -> str | None:
        record = asdict(event)
        record["details"] = dict(event.details)
        now = time.time()
        async with self._engine.begin() as db:
            await self._lock_chain(db, now)
            if once is not None:
                if await db.scalar(select(audit_once.c.key).where(audit_once.c.key == once.key)) is not None:
                    return None
                await db.execute(insert(audit_once).values(key=once.key, until=now + once.seconds))
            head = await db.scalar(select(audit.c.hash).order_by(audit.c.seq.desc()).limit(1))
            prev = head or GENESIS
            digest = chain_hash(prev, record)
            await db.execute(insert(audit).values(record=canonical_json(record), prev_hash=prev, hash=digest))
        return digest

    async def _lock_chain(self, db: AsyncConnection, now: float) -> None:
        if self._postgres:
            await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
        # SQLite: this write takes the database's write lock for the rest of the transaction.
        await db.execute(delete(audit_once).where(audit_once.c.until <= now))

    async def records(self) -> list[tuple[int, dict[str, Any], str, str]]:
        found: list[tuple[int, dict[str, Any], str, str]] = []
        after = 0
        async with self._engine.connect() as db:
            while True:
                page = (
                    await db.execute(
                        select(audit.c.seq, audit.c.record, audit.c.prev_hash, audit.c.hash)
                        .where(audit.c.seq > after)
                        .order_by(audit.c.seq)
                        .limit(_PAGE)
                    )
                ).all()
                found.extend((seq, json.loads(record), prev, digest) for seq, record, prev, digest in page)
                if len(page) < _PAGE:
                    return found
                after = page[-1][0]

    async def verify(self) -> int | None:
        return first_break(await self.records())

    async def head(self) -> int | None:
        async with self._engine.connect() as db:
            return await db.scalar(select(func.max(audit.c.seq)))

    async def records_after(self, seq: int | None, limit: int = 500) -> list[dict[str, Any]]:
        async with self._engine.connect() as db:
            rows = await db.execute(
                select(audit.c.seq, audit.c.record, audit.c.hash)
                .where(audit.c.seq > (seq or 0))
                .order_by(audit.c.seq)
                .limit(limit)
            )
            return [{"seq": s, **json.loads(record), "hash": digest} for s, record, digest in rows]

    async def delete_before(self, seq: int) -> int:
        async with self._engine.begin() as db:
            return (await db.execute(delete(audit).where(audit.c.seq < seq))).rowcount

    async def close(self) -> None:
        await self._engine.dispose()
