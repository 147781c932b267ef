"""The Redis ledger's keys (all of a tenant in its Cluster slot, {tenant}) and how its script replies read."""

from __future__ import annotations

import hashlib
from typing import Any

from satgate.ledger.base import (
    Bucket,
    Crossing,
    DebitRequest,
    DebitResult,
    LedgerNotInitialised,
    LedgerUnavailable,
    Outcome,
)

UNMARKED = (
    "ledger: Redis holds no ledger marker for this tenant's slot: it was restarted without its data (or is not "
    "the ledger). Restore it from its AOF or RDB; run 'satgate ledger init' only for a new ledger"
)


def _key(tenant: str, kind: str, name: str) -> str:
    return f"sg:{{{tenant}}}:{kind}:{name}"


def adjustment_key(tenant: str, change_id: str) -> str:
    return _key(tenant, "adj", change_id)


def revoked_key(tenant: str) -> str:
    return _key(tenant, "revoked", "ids")


def bucket_key(tenant: str, bucket_id: str) -> str:
    return _key(tenant, "b", bucket_id)


def window_key(tenant: str, bucket_id: str, window: int) -> str:
    return _key(tenant, "w", f"{bucket_id}:{window}")


def thresholds_key(tenant: str, bucket_id: str, window: int | None) -> str:
    return _key(tenant, "th", bucket_id if window is None else f"{bucket_id}:{window}")


def bucket_keys(tenant: str, buckets: tuple[Bucket, ...], at: float) -> tuple[list[str], list[str]]:
    """Each bucket's three keys and its keep seconds ('' lifetime), windowed ones in the window of `at`."""
    keys: list[str] = []
    keeps: list[str] = []
    for bucket in buckets:
        lifetime = bucket_key(tenant, bucket.bucket_id)
        if bucket.period is None:
            keys += (lifetime, lifetime, thresholds_key(tenant, bucket.bucket_id, None))
            keeps.append("")
            continue
        window = bucket.period.index(at)
        keys += (
            lifetime,
            window_key(tenant, bucket.bucket_id, window),
            thresholds_key(tenant, bucket.bucket_id, window),
        )
        keeps.append(str(bucket.period.keep_seconds(window, at)))
    return keys, keeps


def limit_pairs(buckets: tuple[Bucket, ...], keeps: list[str]) -> list[Any]:
    pairs: list[Any] = []
    for bucket, keep in zip(buckets, keeps, strict=True):
        pairs += (bucket.limit, keep)
    return pairs


def crossings_of(request: DebitRequest, at: float, replies: list[Any]) -> tuple[Crossing, ...]:
    found = []
    for reply in replies:
        position, permille, limit = reply.split(":")
        bucket = request.buckets[int(position) - 1]
        found.append(Crossing(bucket.bucket_id, int(permille), bucket.window(at), int(limit)))
    return tuple(found)


def resets_at(request: DebitRequest, at: float, short: str) -> float | None:
    buckets = [request.buckets[int(position) - 1] for position in short.split(",") if position]
    if not buckets or any(b.period is None for b in buckets):
        return None
    return min(b.period.window_end(at) for b in buckets if b.period is not None)


def debit_record_key(tenant: str, debit_id: str | None) -> str:
    digest = hashlib.blake2b((debit_id or "").encode(), digest_size=16).hexdigest()
    return _key(tenant, "i", digest)


def outcome(reply: Any, request: DebitRequest, at: float) -> DebitResult:
    match reply:
        case ["unmarked"]:
            raise LedgerNotInitialised(UNMARKED)
        case ["expired"]:
            return DebitResult(Outcome.EXPIRED)
        case ["revoked"]:
            return DebitResult(Outcome.REVOKED)
        case ["replay", seen]:
            charged, remaining, attempt = seen.split(":", 2)
            # our own first copy, when a resend finds it: this call did spend
            replayed = not request.attempt or attempt != request.attempt
            return DebitResult(Outcome.DEBITED, charged=int(charged), remaining=int(remaining), replayed=replayed)
        case ["insufficient", remaining, short]:
            reset = resets_at(request, at, short)
            return DebitResult(Outcome.INSUFFICIENT, charged=0, remaining=int(remaining), resets_at=reset)
        case ["ok", charged, remaining, *crossed]:
            return DebitResult(
                Outcome.DEBITED,
                charged=int(charged),
                remaining=int(remaining) if remaining else None,
                crossed=crossings_of(request, at, crossed) if crossed else (),
            )
    raise LedgerUnavailable(f"ledger: redis: unexpected reply {reply!r}")
