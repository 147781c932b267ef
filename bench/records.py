"""Idempotency records over a sustained run: does what the ledger keeps stay bounded however long it runs?

Every debit stores its record for the idempotency window (SQLite: a time-slotted row the writer sweeps; Redis: a
key with the window as TTL). The SPEC's window is 10 minutes; here it is shortened to a few seconds, so a run of a
few windows shows the plateau: the records of about one window (SQLite: up to two slots plus one sweep interval),
then flat, whatever the run's length. Rows/keys and bytes are sampled each half window.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from satgate.ledger import Bucket, DebitRequest, Ledger
from satgate.ledger.initialise import init_ledger_blocking
from satgate.ledger.redis import RedisLedger
from satgate.ledger.sqlite import SqliteLedger

CONCURRENT = 32  # as wrk's connections: group commit and pipelines share work


@dataclass
class SustainedRun:
    debits: int
    seconds: float
    window_seconds: int
    samples: list[tuple[float, int, int]]  # (seconds since the start, records or keys, bytes)


def _sqlite_sample(path: Path) -> tuple[int, int]:
    """(debit records, bytes of the file's pages in use: what the next record does not need to grow)"""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT count(*) FROM debits").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        return rows, pages * db.execute("PRAGMA page_size").fetchone()[0]


def _redis_sample(cli: Callable[..., str]) -> tuple[int, int]:
    """(keys: records, the bucket and the ledger markers; used_memory bytes)"""
    memory = next(line for line in cli("info", "memory").splitlines() if line.startswith("used_memory:"))
    return int(cli("dbsize").strip()), int(memory.split(":")[1])


async def _sustain(ledger: Ledger, sample: Callable[[], tuple[int, int]], seconds: float, window: int) -> SustainedRun:
    bucket = Bucket(uuid.uuid4().hex, 10**15)
    samples = [(0.0, *sample())]
    debits = 0
    started = time.monotonic()
    next_sample = started + window / 2
    while (now := time.monotonic()) < started + seconds:
        batch = [
            DebitRequest("bench", ("0" * 32,), (bucket,), 1, uuid.uuid4().hex, attempt=uuid.uuid4().hex)
            for _ in range(CONCURRENT)
        ]
        await asyncio.gather(*(ledger.debit(request) for request in batch))
        debits += CONCURRENT
        if now >= next_sample:
            samples.append((now - started, *sample()))
            next_sample += window / 2
    samples.append((time.monotonic() - started, *sample()))
    await ledger.close()
    return SustainedRun(debits, seconds, window, samples)


async def sqlite_records(state: Path, seconds: float, window: int) -> SustainedRun:
    url = f"sqlite:///{state}/ledger-records.db"
    init_ledger_blocking(url)
    path = state / "ledger-records.db"
    return await _sustain(
        SqliteLedger(path, idempotency_window_seconds=window), lambda: _sqlite_sample(path), seconds, window
    )


async def redis_records(url: str, cli: Callable[..., str], seconds: float, window: int) -> SustainedRun:
    init_ledger_blocking(url)
    ledger = RedisLedger.from_url(url, idempotency_window_seconds=window)
    return await _sustain(ledger, lambda: _redis_sample(cli), seconds, window)


def describe(store: str, run: SustainedRun) -> str:
    """One line: the records after two windows (the plateau) against the end, and the bytes."""
    samples, window = run.samples, run.window_seconds
    first = next((s for s in samples if s[0] >= 2 * window), samples[-1])
    end, peak = samples[-1], max(s[1] for s in samples)
    return (
        f"  {store:7s} {run.debits} debits in {run.seconds:.0f}s ({run.debits / run.seconds:,.0f}/s), window"
        f" {window}s: records {samples[0][1]} → {first[1]} after 2 windows → {end[1]} at the end (peak {peak});"
        f" bytes {samples[0][2] / 1e6:.2f} → {first[2] / 1e6:.2f} → {end[2] / 1e6:.2f} MB"
    )
