"""The SQLAlchemy engine a `control_plane:` URL opens."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from satgate.control_plane.url import sqlite_file, validate_control_plane_url
from satgate.sqlite_db import create_private, enable_wal

_SQLITE_BUSY_TIMEOUT_MS = 5000


def failure_reason(exc: BaseException) -> str:
    """The driver's own first line (SQLAlchemy wraps it with SQL and a link): what a one-line refusal quotes."""
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def _async_url(url: str) -> URL:
    validate_control_plane_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    mode = parsed.query.get("sslmode", "prefer")
    return (
        parsed.set(drivername="postgresql+asyncpg")
        .difference_update_query(["sslmode"])
        .update_query_dict({"ssl": mode if isinstance(mode, str) else mode[-1]})
    )


def create_engine(url: str) -> AsyncEngine:
    """SQLite: the file created private (0600) and opened in WAL with a busy timeout, so the Mint and the CLI on
    one host can both write. PostgreSQL: asyncpg, with sslmode passed on as asyncpg's `ssl`."""
    target = _async_url(url)
    path = sqlite_file(url)
    if path is None:
        return create_async_engine(target, pool_pre_ping=True)
    create_private(path)
    engine = create_async_engine(target)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        enable_wal(cursor, _SQLITE_BUSY_TIMEOUT_MS)  # processes opening a new file together retry the switch
        cursor.close()

    return engine
