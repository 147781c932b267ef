"""Usage records: one per decision (token id, tenant, route, method, status, credits, declared attributes) —
no PII, no payloads, no query strings. The hot path only appends to a buffer; a background task writes batches
to SQLite off the event loop and drops records past the retention window. A crash loses at most one flush
interval of records: usage is for reporting, the ledger is the source of truth for credits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog

from satgate.sqlite_db import open_sqlite

log = structlog.get_logger("satgate.usage")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    time REAL NOT NULL, tenant TEXT, token_id TEXT, route TEXT NOT NULL, method TEXT NOT NULL,
    status INTEGER NOT NULL, credits INTEGER NOT NULL, attributes TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS usage_by_time ON usage (time);
"""
Record = tuple[float, str | None, str | None, str, str, int, int, str]  # attributes as canonical JSON
MAX_BUFFER = 100_000  # beyond this, records are dropped (and counted) rather than growing without bound


GROUP_COLUMNS = {"token": "token_id", "tenant": "tenant", "route": "route"}


def grouping(by: str) -> tuple[str, str | None]:
    """(column, attribute key) for `--by`: token, tenant, route or attr:<key>; refuses anything else."""
    if by in GROUP_COLUMNS:
        return GROUP_COLUMNS[by], None
    if by.startswith("attr:") and by[5:].replace("_", "").replace(".", "").isalnum():
        return "attributes", by[5:]
    raise ValueError(f"--by must be token, tenant, route or attr:<key>, not {by!r}")


def _sqlite_group(by: str) -> str:
    column, key = grouping(by)
    return column if key is None else f"json_extract(attributes, '$.\"{key}\"')"


def report_rows(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [
        {"key": k, "requests": int(n), "allowed": int(ok), "denied": int(denied), "credits": int(credits)}
        for k, n, ok, denied, credits in rows
    ]


class UsageSink(Protocol):
    """Where a recorder's batches go: a SQLite file on this host, or the shared control plane."""

    async def write(self, records: list[Record], retain_after: float) -> None: ...

    async def report(self, by: str, since: float, tenant: str | None = None) -> list[dict[str, Any]]:
        """Totals grouped by `token`, `tenant`, `route` or `attr:<key>`; `tenant`: that tenant's records only."""
        ...

    async def timeline(
        self, since: float, step_seconds: int, tenant: str | None = None, by: str | None = None
    ) -> list[dict[str, Any]]:
        """Totals per time slot of `step_seconds` (slot start as unix seconds), oldest first; with `by`, per slot
        and key (each row's "key"), as `report` groups."""
        ...

    async def close(self) -> None: ...


def timeline_rows(rows: Iterable[Sequence[Any]], step_seconds: int, grouped: bool = False) -> list[dict[str, Any]]:
    """Rows of (slot, [key,] requests, allowed, denied, credits) as dicts."""
    shown = []
    for row in rows:
        slot, *rest = row
        key = rest.pop(0) if grouped else None
        n, ok, no, c = rest
        entry: dict[str, Any] = {"start": int(slot) * step_seconds, "requests": int(n), "allowed": int(ok)}
        entry.update(denied=int(no), credits=int(c))
        if grouped:
            entry["key"] = key
        shown.append(entry)
    return shown


class UsageStore:
    """The host's own SQLite file (`authz.usage.path`): the default, one host."""

    def __init__(self, path: str | Path) -> None:
        self._db = open_sqlite(path, _SCHEMA, busy_timeout_ms=5000)

    def write_now(self, records: list[Record], retain_after: float) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?, ?)", records)
            self._db.execute("DELETE FROM usage WHERE time < ?", (retain_after,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def report(self, by: str, since: float, tenant: str | None = None) -> list[dict[str, Any]]:
        """Totals grouped by `token`, `tenant`, `route` or `attr:<key>` (e.g. attr:department)."""
        group = _sqlite_group(by)
        scoped = "" if tenant is None else " AND tenant = ?"
        rows = self._db.execute(
            f"SELECT {group} AS k, count(*), sum(status = 200), sum(status != 200), sum(credits)"  # noqa: S608
            f" FROM usage WHERE time >= ?{scoped} GROUP BY k ORDER BY sum(credits) DESC, k",
            (since,) if tenant is None else (since, tenant),
        ).fetchall()
        return report_rows(rows)

    def timeline(
        self, since: float, step_seconds: int, tenant: str | None = None, by: str | None = None
    ) -> list[dict[str, Any]]:
        scoped = "" if tenant is None else " AND tenant = ?"
        key = "" if by is None else f", {_sqlite_group(by)} AS k"
        rows = self._db.execute(
            f"SELECT CAST(time / ? AS INTEGER) AS slot{key}, count(*), sum(status = 200), sum(status != 200),"  # noqa: S608
            f" sum(credits) FROM usage WHERE time >= ?{scoped} GROUP BY slot{', k' if by else ''} ORDER BY slot",
            (step_seconds, since) if tenant is None else (step_seconds, since, tenant),
        ).fetchall()
        return timeline_rows(rows, step_seconds, grouped=by is not None)

    def close_now(self) -> None:
        self._db.close()


class SqliteUsageSink:
    """UsageStore off the event loop."""

    def __init__(self, path: str | Path) -> None:
        self._store = UsageStore(path)

    async def write(self, records: list[Record], retain_after: float) -> None:
        await asyncio.to_thread(self._store.write_now, records, retain_after)

    async def report(self, by: str, since: float, tenant: str | None = None) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._store.report, by, since, tenant)

    async def timeline(
        self, since: float, step_seconds: int, tenant: str | None = None, by: str | None = None
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._store.timeline, since, step_seconds, tenant, by)

    async def close(self) -> None:
        self._store.close_now()


class UsageRecorder:
    def __init__(self, store: UsageSink, *, retention_days: float, flush_seconds: float = 1.0) -> None:
        self._store = store
        self._retention = retention_days * 86400
        self._flush_seconds = flush_seconds
        self._buffer: list[Record] = []
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def record(
        self,
        *,
        tenant: str | None,
        token_id: str | None,
        route: str,
        method: str,
        status: int,
        credits: int,
        attributes: Mapping[str, str],
    ) -> None:
        if len(self._buffer) >= MAX_BUFFER:
            self.dropped += 1
            return
        attrs = json.dumps(attributes, sort_keys=True) if attributes else "{}"
        self._buffer.append((time.time(), tenant, token_id, route, method, status, credits, attrs))

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever())

    async def flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if batch:
            try:
                await self._store.write(batch, time.time() - self._retention)
            except Exception as exc:  # a store down or full loses this batch of reports, never a decision
                self.dropped += len(batch)
                log.error("usage_write_failed", detail=str(exc), records=len(batch))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
        await self._store.close()
