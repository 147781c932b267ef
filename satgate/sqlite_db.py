"""How every embedded SQLite store of SatGate opens its file: autocommit (transactions are explicit), usable
from the thread that flushes, WAL so readers in other processes never block writers, schema created once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def enable_wal(db: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Switching to WAL needs an exclusive lock taken from a shared one; when another process opening the same new
    file holds its own shared lock, SQLite answers "database is locked" at once instead of calling the busy
    handler (that wait could deadlock). Processes starting together (workers, replicas) retry here instead."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def open_sqlite(path: str | Path, schema: str, *, busy_timeout_ms: int = 2000) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    enable_wal(db, busy_timeout_ms)
    for statement in filter(str.strip, schema.split(";")):
        db.execute(statement)
    return db
