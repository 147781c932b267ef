"""The ledger contract as a reference model: plain single-threaded Python written from the SPEC — lifetime and
windowed buckets in any chain, revocations, records for idempotent replays, refunds and settlements — and the
chains of buckets the model test debits."""

from __future__ import annotations

import collections
import secrets
import time
from dataclasses import dataclass, field

from satgate.ledger import Bucket, DebitRequest, Outcome
from satgate.ledger.windows import Period

TENANT = "acme"
# Two roots and their children: lifetime and windowed buckets mixed across delegation steps.
POOL, TEAM = Bucket("a" * 32, 60), Bucket("b" * 32, 25)
HOURLY, MINUTELY = Bucket("c" * 32, 9, Period.parse("1h")), Bucket("d" * 32, 4, Period.parse("1m"))
DAILY = Bucket("e" * 32, 30, Period.parse("1d"))
CHAINS = {  # name: revocation ids (root first), buckets (chain order)
    "pool": (("r1" * 16,), (POOL,)),
    "team": (("r1" * 16, "d1" * 16), (POOL, TEAM)),
    "hourly": (("r1" * 16, "d2" * 16), (POOL, HOURLY)),
    "team-minutely": (("r1" * 16, "d1" * 16, "d3" * 16), (POOL, TEAM, MINUTELY)),
    "daily": (("r2" * 16,), (DAILY,)),
    "daily-hourly": (("r2" * 16, "d4" * 16), (DAILY, HOURLY)),
    "free": (("r3" * 16,), ()),
}
ALL_BUCKETS = (POOL, TEAM, HOURLY, MINUTELY, DAILY)
DEADLINE = 2.0  # seconds, as Envoy's ext_authz timeout gives a check


@dataclass
class Record:
    """A debit the store acknowledged, as the model keeps it."""

    debit_id: str
    attempt: str
    chain: str
    cost: int
    checked_at: float
    charged: int
    created: float = field(default_factory=time.monotonic)
    settled: bool = False


class Model:
    """The SPEC's ledger, one request at a time."""

    def __init__(self) -> None:
        self.spent: collections.Counter[tuple[str, int | None]] = collections.Counter()  # (bucket, window)
        self.revoked: set[str] = set()
        self.records: dict[str, Record] = {}

    def key(self, bucket: Bucket, at: float) -> tuple[str, int | None]:
        return bucket.bucket_id, bucket.window(at)

    def left(self, bucket: Bucket, at: float) -> int:
        return bucket.limit - self.spent[self.key(bucket, at)]

    def debit(self, chain: str, cost: int, at: float) -> Outcome:
        ids, buckets = CHAINS[chain]
        if self.revoked & set(ids):
            return Outcome.REVOKED
        if any(self.left(b, at) < cost for b in buckets):
            return Outcome.INSUFFICIENT
        for bucket in buckets:
            self.spent[self.key(bucket, at)] += cost
        return Outcome.DEBITED

    def give_back(self, record: Record, credits: int) -> None:
        for bucket in CHAINS[record.chain][1]:
            self.spent[self.key(bucket, record.checked_at)] -= credits

    def payable(self, record: Record, at_most: int) -> int:
        return min([at_most, *(self.left(b, record.checked_at) for b in CHAINS[record.chain][1])])


def request(chain: str, cost: int, at: float, debit_id: str | None = None, deadline: float | None = None):
    """As the check sends it: with a deadline (a debit whose answer is lost is refunded once it has passed)."""
    ids, buckets = CHAINS[chain]
    return DebitRequest(
        TENANT,
        ids,
        buckets,
        cost,
        debit_id or secrets.token_hex(16),
        deadline=time.time() + DEADLINE if deadline is None else deadline,
        attempt=secrets.token_hex(8),
        checked_at=at,
    )


def replayed(record: Record, at: float) -> DebitRequest:
    return DebitRequest(
        TENANT,
        CHAINS[record.chain][0],
        CHAINS[record.chain][1],
        record.cost,
        record.debit_id,
        attempt=record.attempt,
        checked_at=at,
    )
