"""Windowed budgets, settling and threshold records on every store (SPEC v2.1, Ledger), with the check's time
injected: each debit carries `checked_at`, the window it is judged and charged in."""

import asyncio
import secrets
import sqlite3
import time

import pytest

import satgate.ledger.sqlite as sqlite_ledger
from satgate.ledger import Bucket, DebitRequest, Outcome
from satgate.ledger.redis_keys import thresholds_key, window_key
from satgate.ledger.windows import Period
from tests.ledgers import fresh_ledger

HOUR = Period.parse("1h")
T0 = 1_800_000_000.0  # on an hour boundary: 2027-01-15T08:00:00Z
assert T0 % 3600 == 0


def windowed(limit: int, period: Period = HOUR) -> Bucket:
    return Bucket(secrets.token_hex(16), limit, period)


def lifetime(limit: int) -> Bucket:
    return Bucket(secrets.token_hex(16), limit)


def at(when: float, buckets, cost=1, key=None, thresholds=()) -> DebitRequest:
    return DebitRequest(
        "acme",
        ("t" * 32,),
        tuple(buckets),
        cost,
        key or secrets.token_hex(16),
        attempt=secrets.token_hex(8),
        checked_at=when,
        thresholds=thresholds,
    )


async def test_each_window_starts_unspent(ledger):
    bucket = windowed(3)
    results = [await ledger.debit(at(T0 + 10 * i, [bucket])) for i in range(4)]
    assert [r.outcome for r in results] == [Outcome.DEBITED] * 3 + [Outcome.INSUFFICIENT]
    assert results[-1].resets_at == T0 + 3600  # the window's end: Retry-After and x-satgate-budget-reset
    next_window = await ledger.debit(at(T0 + 3600, [bucket]))
    assert (next_window.outcome, next_window.remaining) == (Outcome.DEBITED, 2)
    assert await ledger.remaining("acme", (bucket,), at=T0 + 3599) == 0
    assert await ledger.remaining("acme", (bucket,), at=T0 + 3600) == 2


async def test_lifetime_and_windowed_buckets_are_judged_together(ledger):
    parent, child = lifetime(5), windowed(2)
    outcomes = []
    for hour in range(4):
        for _ in range(3):
            result = await ledger.debit(at(T0 + hour * 3600, [parent, child]))
            outcomes.append((result.outcome, result.resets_at))
    debited = [o for o, _ in outcomes if o is Outcome.DEBITED]
    assert len(debited) == 5  # 2 + 2 + 1: the lifetime parent caps the child's windows
    assert outcomes[2] == (Outcome.INSUFFICIENT, T0 + 3600)  # only the window is short: it resets
    assert outcomes[-1] == (Outcome.INSUFFICIENT, None)  # the lifetime bucket is short too: no reset to wait for
    assert await ledger.remaining_each("acme", (parent, child), at=T0 + 4 * 3600) == [0, 2]


async def test_monthly_windows_follow_the_calendar(ledger):
    bucket = windowed(1, Period.parse("month"))
    jan_31 = 1_801_439_999.0  # 2027-01-31T23:59:59Z
    assert (await ledger.debit(at(jan_31, [bucket]))).outcome is Outcome.DEBITED
    refused = await ledger.debit(at(jan_31, [bucket]))
    assert refused.resets_at == 1_801_440_000.0  # 2027-02-01T00:00:00Z
    assert (await ledger.debit(at(jan_31 + 1, [bucket]))).outcome is Outcome.DEBITED


async def test_concurrent_debits_straddling_a_boundary_spend_each_window_exactly(ledger):
    """Half the checks are taken a millisecond before the boundary, half at it, all sent at once: each window pays
    exactly its limit, the lifetime parent exactly both, and no request is charged in a window it was not
    checked in."""
    parent, child = lifetime(10_000), windowed(40)
    boundary = T0 + 3600
    requests = [at(boundary - 0.001 if i % 2 else boundary, [parent, child]) for i in range(200)]
    results = await asyncio.gather(*(ledger.debit(r) for r in requests))
    before = [r for r, q in zip(results, requests, strict=True) if q.checked_at < boundary]
    after = [r for r, q in zip(results, requests, strict=True) if q.checked_at >= boundary]
    assert sum(r.outcome is Outcome.DEBITED for r in before) == 40
    assert sum(r.outcome is Outcome.DEBITED for r in after) == 40
    assert await ledger.remaining_each("acme", (parent, child), at=boundary - 0.001) == [10_000 - 80, 0]
    assert await ledger.remaining_each("acme", (parent, child), at=boundary) == [10_000 - 80, 0]
    # a replay in the next window is answered from the record: not charged again, in any window
    first = next(q for r, q in zip(results, requests, strict=True) if r.outcome is Outcome.DEBITED)
    again = await ledger.debit(at(boundary + 10, [parent, child], key=first.debit_id))
    assert again.replayed and await ledger.remaining("acme", (parent,)) == 10_000 - 80


async def test_a_refund_goes_back_to_the_window_it_was_charged_in(ledger):
    bucket = windowed(2)
    request = at(T0 + 3599, [bucket], cost=2)
    assert (await ledger.debit(request)).remaining == 0
    assert (await ledger.debit(at(T0 + 3600, [bucket], cost=2))).remaining == 0
    assert await ledger.refund(request) == 2  # paid after the boundary, to the window of the check
    assert await ledger.remaining("acme", (bucket,), at=T0 + 3599) == 2
    assert await ledger.remaining("acme", (bucket,), at=T0 + 3600) == 0
    assert await ledger.refund(request) == 0  # once


async def test_settling_refunds_the_difference_or_charges_the_excess_up_to_what_is_left(ledger):
    parent, child = lifetime(100), windowed(10)
    low = at(T0, [parent, child], cost=5)
    await ledger.debit(low)
    settled = await ledger.settle(low, 2)
    assert (settled.settled, settled.charged, settled.overshoot, settled.remaining) == (True, 2, 0, 8)
    assert await ledger.remaining_each("acme", (parent, child), at=T0) == [98, 8]
    assert not (await ledger.settle(low, 1)).settled  # exactly once
    assert await ledger.refund(low) == 0  # a settled debit is not refunded afterwards

    high = at(T0, [parent, child], cost=3)
    await ledger.debit(high)  # 5 left in the window
    settled = await ledger.settle(high, 12)
    assert (settled.charged, settled.overshoot, settled.remaining) == (8, 4, 0)  # 3 reserved + 5, 4 over
    assert await ledger.remaining_each("acme", (parent, child), at=T0) == [90, 0]
    replay = await ledger.debit(at(T0, [parent, child], cost=3, key=high.debit_id))
    assert replay.replayed and replay.charged == 8  # the record holds what the request cost in the end


async def test_settling_to_the_reservation_changes_nothing_but_still_settles_once(ledger):
    bucket = lifetime(10)
    request = at(T0, [bucket], cost=4)
    await ledger.debit(request)
    assert (await ledger.settle(request, 4)).settled
    assert not (await ledger.settle(request, 0)).settled
    assert await ledger.remaining("acme", (bucket,)) == 6


async def test_a_settlement_of_an_unknown_or_other_attempt_does_nothing(ledger):
    bucket = lifetime(10)
    request = at(T0, [bucket], cost=4)
    await ledger.debit(request)
    other = DebitRequest("acme", (), (bucket,), 4, request.debit_id, attempt="someone-else", checked_at=T0)
    assert not (await ledger.settle(other, 0)).settled
    assert not (await ledger.settle(at(T0, [bucket]), 0)).settled
    assert await ledger.remaining("acme", (bucket,)) == 6


async def test_each_threshold_is_crossed_once_per_bucket_and_window(ledger):
    bucket = windowed(10)
    crossings = []
    for i in range(10):
        result = await ledger.debit(at(T0 + i, [bucket], thresholds=(800, 1000)))
        crossings.append([c.permille for c in result.crossed])
    assert crossings == [[]] * 7 + [[800], [], [1000]]
    assert {c.window for c in (await ledger.debit(at(T0 + 3600, [bucket], cost=9, thresholds=(800,)))).crossed} == {
        HOUR.index(T0 + 3600)
    }  # the next window alerts again
    # a refund takes the bucket back below 80 %; spending past it again raises nothing new in the same window
    other = windowed(10)
    first = at(T0, [other], cost=8, thresholds=(800,))
    assert [c.permille for c in (await ledger.debit(first)).crossed] == [800]
    assert await ledger.refund(first) == 8
    assert (await ledger.debit(at(T0, [other], cost=8, thresholds=(800,)))).crossed == ()


async def test_one_debit_can_cross_several_thresholds_of_several_buckets(ledger):
    parent, child = lifetime(20), windowed(10)
    result = await ledger.debit(at(T0, [parent, child], cost=10, thresholds=(500, 800, 1000)))
    assert sorted((c.bucket_id == child.bucket_id, c.permille) for c in result.crossed) == [
        (False, 500),
        (True, 500),
        (True, 800),
        (True, 1000),
    ]
    assert next(c for c in result.crossed if c.bucket_id == parent.bucket_id).window is None


async def test_an_excess_charged_by_a_settlement_can_cross_a_threshold(ledger):
    bucket = lifetime(10)
    request = at(T0, [bucket], cost=1, thresholds=(800,))
    await ledger.debit(request)
    assert [c.permille for c in (await ledger.settle(request, 9)).crossed] == [800]


async def test_a_budget_change_sets_the_per_window_limit_from_the_current_window_on(ledger):
    bucket = windowed(5)
    await ledger.debit(at(T0, [bucket], cost=5))
    assert (await ledger.adjust("acme", bucket, 3, secrets.token_hex(8), at=T0)).remaining == 3
    assert await ledger.remaining("acme", (bucket,), at=T0) == 3
    assert await ledger.remaining("acme", (bucket,), at=T0 + 3600) == 8  # every later window too
    assert not (await ledger.adjust("acme", bucket, -4, secrets.token_hex(8), at=T0)).applied  # below spent
    assert (await ledger.adjust("acme", bucket, -2, secrets.token_hex(8), at=T0 + 3600)).remaining == 6
    assert (await ledger.debit(at(T0 + 3600, [bucket], cost=6))).remaining == 0


@pytest.mark.parametrize("limit", [1, 10**15])
async def test_window_limit_extremes(ledger, limit):
    bucket = windowed(limit, Period.parse("10000d"))
    result = await ledger.debit(at(T0, [bucket], cost=limit, thresholds=(1, 999, 1000)))
    assert (result.outcome, result.remaining) == (Outcome.DEBITED, 0)
    assert sorted(c.permille for c in result.crossed) == [1, 999, 1000]


async def test_redis_drops_windows_before_the_previous_one(redis_server):
    redis_server.cli("flushall")
    ledger = fresh_ledger(redis_server.url)
    now = time.time()
    bucket = windowed(5, Period.parse("1m"))
    await ledger.debit(at(now, [bucket], thresholds=(200,)))
    window = bucket.period.index(now)
    for key in (window_key("acme", bucket.bucket_id, window), thresholds_key("acme", bucket.bucket_id, window)):
        ttl = int(redis_server.cli("ttl", key).strip())
        assert 60 < ttl <= 121, key  # to the end of the next window
    await ledger.close()


async def test_sqlite_sweeps_windows_before_the_previous_one(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_ledger, "_SWEEP_EVERY", 10)
    ledger = fresh_ledger(f"sqlite:///{tmp_path}/ledger.db")
    bucket, other = windowed(100, Period.parse("1m")), lifetime(100)
    for i in range(5):
        await ledger.debit(at(T0 + i, [bucket], thresholds=(10,)))
    for i in range(5):  # two windows later: the 10th debit sweeps
        await ledger.debit(at(T0 + 180 + i, [bucket, other]))
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert db.execute("SELECT win FROM windows").fetchall() == [(Period.parse("1m").index(T0 + 180),)]
        assert db.execute("SELECT count(*) FROM thresholds").fetchone() == (0,)
    await ledger.close()


async def test_a_ledger_made_before_windows_is_upgraded_when_opened(tmp_path):
    from satgate.ledger.sqlite_schema import SCHEMA_2_0

    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_2_0)
        db.execute("INSERT INTO ledger_meta VALUES ('marker', 'm')")
        db.execute("INSERT INTO buckets VALUES ('acme', 'old', 5, 2)")
    ledger = sqlite_ledger.SqliteLedger(path)
    assert (await ledger.debit(at(T0, [windowed(3)]))).remaining == 2
    assert await ledger.remaining("acme", (Bucket("old", 5),)) == 3  # what it held is kept
    await ledger.close()
