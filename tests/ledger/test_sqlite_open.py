"""Processes that open the same SQLite file at once: authz workers opening the ledger `satgate ledger init` made,
replicas sharing a new usage database."""

import multiprocessing

import pytest

from satgate.ledger.initialise import init_ledger_blocking
from satgate.ledger.sqlite import SqliteLedger
from satgate.sqlite_db import open_sqlite

SCHEMA = "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, body TEXT)"


def _open(kind: str, path: str, barrier, results) -> None:
    barrier.wait()  # all at once: the race is between their first shared lock and the switch to WAL
    try:
        if kind == "ledger":
            db, _identity = SqliteLedger(path, busy_timeout_ms=5000)._connect()
        else:
            db = open_sqlite(path, SCHEMA, busy_timeout_ms=5000)
        results.put(db.execute("PRAGMA journal_mode").fetchone()[0])
    except Exception as exc:
        results.put(repr(exc))


@pytest.mark.parametrize("kind", ["store", "ledger"])
def test_processes_opening_a_new_file_together_all_get_wal(tmp_path, kind):
    context = multiprocessing.get_context("fork")
    outcomes: list[str] = []
    for round_ in range(25):  # without the retry, about 1 open in 30 failed with "database is locked"
        path = str(tmp_path / f"{kind}-{round_}.db")
        if kind == "ledger":
            init_ledger_blocking(f"sqlite:///{path}")
        barrier, results = context.Barrier(6), context.Queue()
        processes = [context.Process(target=_open, args=(kind, path, barrier, results)) for _ in range(6)]
        for process in processes:
            process.start()
        outcomes += [results.get(timeout=30) for _ in processes]
        for process in processes:
            process.join(timeout=30)
    assert set(outcomes) == {"wal"}
