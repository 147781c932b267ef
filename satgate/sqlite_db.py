"""How every embedded SQLite store of SatGate opens its file: autocommit (transactions are explicit), usable
from the thread that flushes, WAL so readers in other processes never block writers, schema created once."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Protocol

_state_file_mode = 0o600


def use_group_readable_state(group_readable: bool) -> None:
    """New state files are 0600, or 0640 beside a group-readable keyring (`keyring_group_readable`): set once per
    process from its configuration. SQLite gives the -wal and -shm files the database file's mode."""
    global _state_file_mode  # noqa: PLW0603 - one process-wide setting, read where files are created
    _state_file_mode = 0o640 if group_readable else 0o600


def create_private(path: str | Path) -> None:
    """Create `path` (and its directory) with the state file mode, unless it exists; never widen an existing one."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _state_file_mode))
    except FileExistsError:
        return
    os.chmod(path, _state_file_mode)  # the umask may have narrowed it further; never widen past the mode


def others_may_write(path: str | Path) -> str | None:
    """A refusal line when an existing state file is group- or world-writable (anyone could rewrite budgets or
    the audit chain), else None."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:  # missing, or not a path at all: whoever opens it says so, naming the setting
        return None
    if mode & 0o022:
        return f"{path} is group- or world-writable (mode {mode:04o}); run: chmod go-w {path}"
    return None


class _Executes(Protocol):
    """A sqlite3 connection or cursor, or SQLAlchemy's aiosqlite adapter of one."""

    def execute(self, sql: str, /) -> object: ...


def enable_wal(db: _Executes, busy_timeout_ms: int) -> None:
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
    create_private(path)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    enable_wal(db, busy_timeout_ms)
    for statement in filter(str.strip, schema.split(";")):
        db.execute(statement)
    return db
