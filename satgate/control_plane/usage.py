"""Usage records in the control plane: every authz host writes its batches here, so `satgate usage` (and the
admin API) sum all of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from satgate.control_plane.schema import time_slot, usage
from satgate.control_plane.store import open_engine
from satgate.control_plane.url import sqlite_file
from satgate.usage import Record, SqliteUsageSink, UsageSink, grouping, report_rows, timeline_rows

_FIELDS = ("time", "tenant", "token_id", "route", "method", "status", "credits", "attributes")


def _group(by: str) -> Any:
    column, key = grouping(by)
    return usage.c[column] if key is None else usage.c.attributes[key].as_string()


class SqlUsageSink:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    async def open(cls, url: str) -> SqlUsageSink:
        """At this SatGate's schema, or ControlPlaneError: authz never migrates it."""
        return cls(await open_engine(url, upgrade_embedded=False))

    async def write(self, records: list[Record], retain_after: float) -> None:
        rows: list[dict[str, Any]] = [dict(zip(_FIELDS, record, strict=True)) for record in records]
        for row in rows:
            row["attributes"] = json.loads(row["attributes"])
        async with self._engine.begin() as db:
            await db.execute(insert(usage), rows)
            await db.execute(delete(usage).where(usage.c.time < retain_after))

    async def report(self, by: str, since: float, tenant: str | None = None) -> list[dict[str, Any]]:
        group = _group(by)
        credits = func.sum(usage.c.credits)
        query = (
            select(
                group.label("k"),
                func.count(),
                func.sum(case((usage.c.status == 200, 1), else_=0)),
                func.sum(case((usage.c.status != 200, 1), else_=0)),
                credits,
            )
            .where(usage.c.time >= since, *(() if tenant is None else (usage.c.tenant == tenant,)))
            .group_by(group)
            .order_by(credits.desc(), group)
        )
        async with self._engine.connect() as db:
            return report_rows(await db.execute(query))

    async def timeline(
        self, since: float, step_seconds: int, tenant: str | None = None, by: str | None = None
    ) -> list[dict[str, Any]]:
        slot = time_slot(usage.c.time, step_seconds, self._engine.dialect.name).label("slot")
        keys = () if by is None else (_group(by).label("k"),)
        query = (
            select(
                slot,
                *keys,
                func.count(),
                func.sum(case((usage.c.status == 200, 1), else_=0)),
                func.sum(case((usage.c.status != 200, 1), else_=0)),
                func.sum(usage.c.credits),
            )
            .where(usage.c.time >= since, *(() if tenant is None else (usage.c.tenant == tenant,)))
            .group_by(slot, *keys)
            .order_by(slot)
        )
        async with self._engine.connect() as db:
            return timeline_rows(await db.execute(query), step_seconds, grouped=by is not None)

    async def close(self) -> None:
        await self._engine.dispose()


async def open_usage_sink(control_plane_url: str, usage_path: Path) -> UsageSink:
    """The shared control plane when it is PostgreSQL (every authz host writes there, so reports sum them all),
    else this host's own file (authz.usage.path)."""
    if sqlite_file(control_plane_url) is None:
        return await SqlUsageSink.open(control_plane_url)
    return SqliteUsageSink(usage_path)
