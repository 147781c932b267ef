"""The SQLite ledger's transactions, each a function of one connection already inside its IMMEDIATE transaction
(debits, refunds, settlements, budget changes) or a read: what is judged and written, not how it is scheduled
(satgate/ledger/sqlite.py)."""

from __future__ import annotations

import functools
import sqlite3
import time

from satgate.ledger.base import Bucket, BudgetAdjustment, Crossing, DebitRequest, DebitResult, Outcome, SettleResult
from satgate.ledger.sqlite_schema import debit_hash_of, revoked_each_sql, revoked_sql
from satgate.ledger.thresholds import crossed

_LIFETIME = -1  # the `win` of a lifetime bucket's threshold records
SETTLED = "!settled"  # appended to a record's attempt once settled: a second settlement or a refund finds nothing


@functools.cache
def decision_sql(revocation_ids: int) -> str:
    """Revoked?, and the debit's record if one is remembered, in one statement."""
    return f"""
        SELECT EXISTS ({revoked_sql(revocation_ids)}), seen.charged, seen.remaining
        FROM (SELECT 1) LEFT JOIN debits AS seen ON seen.slot IN (?, ?) AND seen.debit_hash = ?
    """  # noqa: S608 - only '?' placeholders are interpolated


@functools.cache
def balances_sql(buckets: int) -> str:
    """Per bucket, in order: what is left (in its current window when windowed) and its lifetime row's spending,
    which for a windowed bucket is its budget changes (a top-up of N is N less spent, as for lifetime buckets)."""
    wanted = ",".join("(?, ?, ?, ?)" for _ in range(buckets))
    return f"""
        WITH wanted (pos, bucket_id, credit_limit, win) AS (VALUES {wanted})
        SELECT wanted.credit_limit - coalesce(b.spent, 0) - coalesce(w.spent, 0), coalesce(b.spent, 0)
        FROM wanted
        LEFT JOIN buckets AS b ON b.tenant = ? AND b.bucket_id = wanted.bucket_id
        LEFT JOIN windows AS w ON w.tenant = ? AND w.bucket_id = wanted.bucket_id AND w.win = wanted.win
        ORDER BY wanted.pos
    """  # noqa: S608


def balances(db: sqlite3.Connection, tenant: str, buckets: tuple[Bucket, ...], at: float) -> list[tuple[int, int]]:
    """(left, limit) per bucket: a windowed bucket's limit is per window, its budget changes included."""
    params: list[object] = []
    for pos, bucket in enumerate(buckets):
        params += (pos, bucket.bucket_id, bucket.limit, bucket.window(at))
    rows = db.execute(balances_sql(len(buckets)), (*params, tenant, tenant)).fetchall()
    return [
        (left, bucket.limit if bucket.period is None else bucket.limit - changes)
        for (left, changes), bucket in zip(rows, buckets, strict=True)
    ]


def spend(db: sqlite3.Connection, tenant: str, buckets: tuple[Bucket, ...], at: float, amount: int) -> None:
    """Add `amount` (negative: give back) to every bucket, each windowed one in the window of `at`. A window the
    store already dropped gets nothing back (its spending no longer counts anyway)."""
    for bucket in buckets:
        if bucket.period is None:
            db.execute(
                "INSERT INTO buckets (tenant, bucket_id, credit_limit, spent) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (tenant, bucket_id) DO UPDATE SET spent = spent + excluded.spent",
                (tenant, bucket.bucket_id, bucket.limit, amount),
            )
            continue
        window = bucket.period.index(at)
        if amount < 0:
            db.execute(
                "UPDATE windows SET spent = spent + ? WHERE tenant = ? AND bucket_id = ? AND win = ?",
                (amount, tenant, bucket.bucket_id, window),
            )
            continue
        db.execute(
            "INSERT INTO windows (tenant, bucket_id, win, spent, expires_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant, bucket_id, win) DO UPDATE SET spent = spent + excluded.spent",
            (tenant, bucket.bucket_id, window, amount, at + bucket.period.keep_seconds(window, at)),
        )


def record_crossings(
    db: sqlite3.Connection,
    req: DebitRequest,
    at: float,
    before: list[tuple[int, int]],
    amount: int,
) -> tuple[Crossing, ...]:
    """The thresholds `amount` more spending crosses, each recorded so that it is reported once per window."""
    found: list[Crossing] = []
    for (left, limit), bucket in zip(before, req.buckets, strict=True):
        spent = limit - left
        for permille in crossed(req.thresholds, limit, spent, spent + amount):
            window = bucket.window(at)
            expires = None if bucket.period is None else at + bucket.period.keep_seconds(window or 0, at)
            inserted = db.execute(
                "INSERT OR IGNORE INTO thresholds (tenant, bucket_id, win, permille, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (req.tenant, bucket.bucket_id, _LIFETIME if window is None else window, permille, expires),
            ).rowcount
            if inserted:
                found.append(Crossing(bucket.bucket_id, permille, window, limit))
    return tuple(found)


def resets_at(buckets: tuple[Bucket, ...], before: list[tuple[int, int]], cost: int, at: float) -> float | None:
    """When a refused debit could next be paid by the window alone: every bucket short of `cost` is windowed."""
    short = [bucket for (left, _limit), bucket in zip(before, buckets, strict=True) if left < cost]
    ends = [b.period.window_end(at) for b in short if b.period is not None]
    return min(ends) if ends and len(ends) == len(short) else None


def debit(db: sqlite3.Connection, req: DebitRequest, now: float, window_seconds: int) -> DebitResult:
    """Inside the writer's transaction, after the write lock was taken: the deadline is judged now."""
    if req.deadline is not None and now > req.deadline:
        return DebitResult(Outcome.EXPIRED)
    at = now if req.checked_at is None else req.checked_at
    slot = int(now // window_seconds)
    hashed = debit_hash_of(req.tenant, req.debit_id)
    revoked, seen_charged, seen_remaining = db.execute(
        decision_sql(len(req.revocation_ids)), (req.tenant, *req.revocation_ids, slot, slot - 1, hashed)
    ).fetchone()
    if revoked:
        return DebitResult(Outcome.REVOKED)
    if seen_charged is not None:
        return DebitResult(Outcome.DEBITED, charged=seen_charged, remaining=seen_remaining, replayed=True)
    before = balances(db, req.tenant, req.buckets, at)
    remaining = min(left for left, _limit in before)
    if remaining < req.cost:
        reset = resets_at(req.buckets, before, req.cost, at)
        return DebitResult(Outcome.INSUFFICIENT, charged=0, remaining=max(remaining, 0), resets_at=reset)
    crossings: tuple[Crossing, ...] = ()
    if req.cost:
        spend(db, req.tenant, req.buckets, at, req.cost)
        if req.thresholds:
            crossings = record_crossings(db, req, at, before, req.cost)
    remaining -= req.cost
    if hashed is not None:
        db.execute(
            "INSERT OR REPLACE INTO debits (slot, debit_hash, charged, remaining, attempt) VALUES (?, ?, ?, ?, ?)",
            (slot, hashed, req.cost, remaining, req.attempt),
        )
    return DebitResult(Outcome.DEBITED, charged=req.cost, remaining=remaining, crossed=crossings)


def refund(db: sqlite3.Connection, req: DebitRequest, now: float, window_seconds: int) -> int:
    slot = int(now // window_seconds)
    row = db.execute(
        "DELETE FROM debits WHERE slot IN (?, ?) AND debit_hash = ? AND attempt = ? RETURNING charged",
        (slot, slot - 1, debit_hash_of(req.tenant, req.debit_id), req.attempt),
    ).fetchone()
    if row is None or not row[0]:
        return 0
    spend(db, req.tenant, req.buckets, now if req.checked_at is None else req.checked_at, -row[0])
    return int(row[0])


def settle(db: sqlite3.Connection, req: DebitRequest, actual: int, now: float, window_seconds: int) -> SettleResult:
    slot = int(now // window_seconds)
    hashed = debit_hash_of(req.tenant, req.debit_id)
    row = db.execute(
        "SELECT slot, charged FROM debits WHERE slot IN (?, ?) AND debit_hash = ? AND attempt = ?",
        (slot, slot - 1, hashed, req.attempt),
    ).fetchone()
    if row is None:
        return SettleResult(settled=False)
    record_slot, reserved = row
    at = now if req.checked_at is None else req.checked_at
    before = balances(db, req.tenant, req.buckets, at)
    payable = max(min(left for left, _limit in before), 0)
    change = actual - reserved if actual <= reserved else min(actual - reserved, payable)
    crossings: tuple[Crossing, ...] = ()
    if change:
        spend(db, req.tenant, req.buckets, at, change)
        if change > 0 and req.thresholds:
            crossings = record_crossings(db, req, at, before, change)
    remaining = min(left for left, _limit in before) - change
    db.execute(
        "UPDATE debits SET charged = ?, remaining = ?, attempt = ? WHERE slot = ? AND debit_hash = ?",
        (reserved + change, remaining, req.attempt + SETTLED, record_slot, hashed),
    )
    overshoot = max(actual - reserved - change, 0)
    return SettleResult(True, reserved + change, overshoot, max(remaining, 0), crossings)


def adjust(db: sqlite3.Connection, tenant: str, bucket: Bucket, delta: int, at: float) -> BudgetAdjustment:
    """A lifetime bucket's limit, or a windowed bucket's per-window limit from the current window on: both are a
    move of the bucket's lifetime row (a top-up of N is N less spent), so debits need nothing new."""
    ((left, _limit),) = balances(db, tenant, (bucket,), at)
    if left + delta < 0:
        return BudgetAdjustment(applied=False, remaining=max(left, 0))
    db.execute(
        "INSERT INTO buckets (tenant, bucket_id, credit_limit, spent) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (tenant, bucket_id) DO UPDATE SET spent = spent + excluded.spent",
        (tenant, bucket.bucket_id, bucket.limit, -delta),
    )
    return BudgetAdjustment(applied=True, remaining=left + delta)


def set_limit(db: sqlite3.Connection, tenant: str, bucket: Bucket, limit: int, if_unset: bool) -> bool:
    """The bucket's lifetime row holds what moves its limit (a windowed bucket's windows keep their own spending):
    set so that the caveat's limit less it is `limit`."""
    conflict = "DO NOTHING" if if_unset else "DO UPDATE SET spent = excluded.spent"
    cursor = db.execute(
        "INSERT INTO buckets (tenant, bucket_id, credit_limit, spent) VALUES (?, ?, ?, ?) "  # noqa: S608 - fixed text
        f"ON CONFLICT (tenant, bucket_id) {conflict}",
        (tenant, bucket.bucket_id, bucket.limit, bucket.limit - limit),
    )
    return cursor.rowcount == 1


def sweep(db: sqlite3.Connection, slot: int, at: float) -> None:
    """Debit records past the idempotency window, windows before the previous one, and their threshold records."""
    db.execute("DELETE FROM debits WHERE slot < ?", (slot - 1,))
    db.execute("DELETE FROM windows WHERE expires_at < ?", (at,))
    db.execute("DELETE FROM thresholds WHERE expires_at < ?", (at,))


def revoke(db: sqlite3.Connection, tenant: str, revocation_id: str, reason: str) -> bool:
    cursor = db.execute(
        "INSERT OR IGNORE INTO revocations (tenant, revocation_id, revoked_at, reason) VALUES (?, ?, ?, ?)",
        (tenant, revocation_id, time.time(), reason),
    )
    return cursor.rowcount == 1


def any_revoked(db: sqlite3.Connection, tenant: str, ids: tuple[str, ...]) -> bool:
    return db.execute(revoked_sql(len(ids)), (tenant, *ids)).fetchone() is not None


def revoked_each(db: sqlite3.Connection, tenant: str, ids: tuple[str, ...]) -> list[bool]:
    found = {row[0] for row in db.execute(revoked_each_sql(len(ids)), (tenant, *ids))}
    return [i in found for i in ids]
