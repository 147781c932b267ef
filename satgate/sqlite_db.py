"""How every embedded SQLite store of SatGate opens its file: autocommit (transactions are explicit), usable
from the thread that flushes, WAL so readers in other processes never block writers, schema created once."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_sqlite(path: str | Path, schema: str, *, busy_timeout_ms: int = 2000) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.execute("PRAGMA journal_mode = WAL")
    for statement in filter(str.strip, schema.split(";")):
        db.execute(statement)
    return db
