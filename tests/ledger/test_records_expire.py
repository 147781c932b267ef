"""Idempotency records are bounded on both stores: SQLite sweeps slots older than the window, Redis gives each
record the window as its TTL — a sustained run keeps about one window of them, whatever its length."""

import secrets
import sqlite3

import satgate.ledger.sqlite as sqlite_ledger
from satgate.ledger import Bucket, DebitRequest
from satgate.ledger.base import IDEMPOTENCY_WINDOW_SECONDS
from satgate.ledger.initialise import init_ledger_blocking
from satgate.ledger.redis import RedisLedger
from satgate.ledger.redis_keys import debit_record_key
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


async def test_redis_records_live_for_a_shorter_window_when_given_one(redis_server):
    """The bench's sustained run shortens the window to show the plateau in seconds: the TTL follows it."""
    ledger = RedisLedger.from_url(redis_server.url, idempotency_window_seconds=2)
    request = keyed(Bucket(secrets.token_hex(16), 100))
    await ledger.debit(request)
    ttl = int(redis_server.cli("ttl", debit_record_key("acme", request.debit_id)).strip())
    assert 0 < ttl <= 2
    await ledger.close()


async def test_sqlite_sweeps_by_the_window_it_was_given(tmp_path, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(sqlite_ledger.time, "time", lambda: now[0])
    monkeypatch.setattr(sqlite_ledger, "_SWEEP_EVERY", 10)
    init_ledger_blocking(f"sqlite:///{tmp_path}/ledger.db")
    ledger = sqlite_ledger.SqliteLedger(tmp_path / "ledger.db", idempotency_window_seconds=2)
    bucket = Bucket(secrets.token_hex(16), 10**9)
    for _ in range(5):
        await ledger.debit(keyed(bucket))
    now[0] += 6  # three of its windows: the default window would keep them
    for _ in range(5):  # the 10th debit sweeps
        await ledger.debit(keyed(bucket))
    assert records(tmp_path / "ledger.db") == 5
    await ledger.close()
