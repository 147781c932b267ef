"""Idempotency records are bounded on both stores: SQLite sweeps slots older than the window, Redis gives each
record the window as its TTL — a sustained run keeps about one window of them, whatever its length."""

import secrets
import sqlite3

import satgate.ledger.sqlite as sqlite_ledger
from satgate.ledger import Bucket, DebitRequest
from satgate.ledger.base import IDEMPOTENCY_WINDOW_SECONDS
from satgate.ledger.redis import debit_record_key
from tests.ledgers import fresh_ledger


def keyed(bucket: Bucket) -> DebitRequest:
    return DebitRequest("acme", ("t" * 32,), (bucket,), 1, secrets.token_hex(16), attempt="a")


def records(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM debits").fetchone()[0]


async def test_sqlite_sweeps_records_older_than_the_window(tmp_path, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(sqlite_ledger.time, "time", lambda: now[0])
    monkeypatch.setattr(sqlite_ledger, "_SWEEP_EVERY", 50)
    ledger = fresh_ledger(f"sqlite:///{tmp_path}/ledger.db")
    bucket = Bucket(secrets.token_hex(16), 10**9)
    for _ in range(40):
        await ledger.debit(keyed(bucket))
    assert records(tmp_path / "ledger.db") == 40
    now[0] += 3 * IDEMPOTENCY_WINDOW_SECONDS  # a long run later
    for _ in range(20):  # the 50th debit sweeps
        await ledger.debit(keyed(bucket))
    assert records(tmp_path / "ledger.db") == 20  # only the current window's
    await ledger.close()


async def test_redis_records_live_for_the_window(redis_server):
    ledger = fresh_ledger(redis_server.url)
    request = keyed(Bucket(secrets.token_hex(16), 100))
    await ledger.debit(request)
    ttl = int(redis_server.cli("ttl", debit_record_key("acme", request.debit_id)).strip())
    assert 0 < ttl <= IDEMPOTENCY_WINDOW_SECONDS
    await ledger.close()
