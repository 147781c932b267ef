"""The ledger contract (SPEC: Ledger): one atomic step that checks revocation, honours the debit's record and
debits every budget bucket of a token's chain, or none of them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from satgate.ledger.windows import Period

IDEMPOTENCY_WINDOW_SECONDS = 600


class LedgerUnavailable(Exception):
    """The store cannot answer; callers must deny (503), never allow."""


class LedgerNotInitialised(LedgerUnavailable):
    """The store is reachable but carries no ledger marker (deleted, emptied, wrong path, restarted empty)."""


@dataclass(frozen=True, slots=True)
class Bucket:
    bucket_id: str  # first 32 hex chars of the chain signature right after the budget caveat
    limit: int
    period: Period | None = None  # budget_window: the limit applies per window of this period

    def window(self, at: float) -> int | None:
        return None if self.period is None else self.period.index(at)


def windowed(bucket: Bucket) -> None:
    if bucket.period is None:
        raise ValueError("set_limit: a windowed bucket only (a lifetime bucket's limit moves by adjust)")


@dataclass(frozen=True, slots=True)
class DebitRequest:
    tenant: str
    revocation_ids: tuple[str, ...]
    buckets: tuple[Bucket, ...]
    cost: int
    # The debit's record for the idempotency window: the request-bound idempotency key, or a fresh random id. A
    # second debit with the same id (a client retry, a store-level resend) is answered from the record.
    debit_id: str | None = None
    deadline: float | None = None  # unix time (this server's clock): past it the store spends nothing
    attempt: str = ""  # this call's own id, kept in the record: a refund gives back only what this call spent
    # The check's time (the authz server's clock): the window each windowed bucket is judged and debited in, and
    # the one its refund or settlement goes back to. None: the store's clock, now.
    checked_at: float | None = None
    thresholds: tuple[int, ...] = ()  # per mille of a bucket's limit: each crossing is reported once (alerts)


@dataclass(frozen=True, slots=True)
class Crossing:
    """A debit took a bucket's spending to or past a threshold, for the first time in this window."""

    bucket_id: str
    permille: int
    window: int | None  # the window index of a windowed bucket
    limit: int  # the bucket's limit (per window), as judged


class Outcome(enum.Enum):
    DEBITED = "debited"
    REVOKED = "revoked"
    INSUFFICIENT = "insufficient"
    EXPIRED = "expired"  # the deadline passed before the store judged it: nothing spent


@dataclass(frozen=True, slots=True)
class DebitResult:
    outcome: Outcome
    charged: int = 0
    remaining: int | None = None  # smallest remaining across buckets; None when the token has no budget
    replayed: bool = False
    crossed: tuple[Crossing, ...] = ()  # thresholds this debit crossed first
    resets_at: float | None = None  # refused, and every bucket that could not pay is windowed: its window's end

    @property
    def spent(self) -> bool:
        """Whether this call itself moved credits (what a refund must give back)."""
        return self.outcome is Outcome.DEBITED and not self.replayed and self.charged > 0


@dataclass(frozen=True, slots=True)
class BudgetAdjustment:
    """A budget change's result: `applied` False when a cut would take the limit below what is spent."""

    applied: bool
    remaining: int  # after the change when applied, else as it stands
    replayed: bool = False  # this change id was applied before (a resend): nothing moved now


@dataclass(frozen=True, slots=True)
class SettleResult:
    """What settling a debit to its actual cost did: `settled` False when there was no unsettled debit to settle
    (settled or refunded already, expired, or never spent by this attempt)."""

    settled: bool
    charged: int = 0  # what the debit now charges in all (reserved, then settled)
    overshoot: int = 0  # actual cost the buckets could not pay
    remaining: int | None = None
    crossed: tuple[Crossing, ...] = ()


class Ledger(Protocol):
    async def debit(self, request: DebitRequest) -> DebitResult:
        """Cancel-safe: if the caller is cancelled while the store may still commit the debit, the store refunds
        what it spent (by the request's attempt), so nothing is spent for an answer nobody receives."""
        ...

    async def refund(self, request: DebitRequest) -> int:
        """Give back what the debit with this id charged, to every bucket it charged, and forget its record;
        exactly once. Returns the credits refunded (0 when there was nothing to refund)."""
        ...

    async def settle(self, request: DebitRequest, actual: int) -> SettleResult:
        """Settle the debit with this id and attempt to `actual` credits, exactly once: refund the difference to
        every bucket it charged, or charge the excess to all of them, atomically, up to what they can still pay."""
        ...

    async def revoke(self, tenant: str, revocation_id: str, reason: str = "") -> bool:
        """True when newly revoked."""
        ...

    async def is_revoked(self, tenant: str, revocation_ids: tuple[str, ...]) -> bool: ...

    async def remaining(self, tenant: str, buckets: tuple[Bucket, ...], *, at: float | None = None) -> int | None:
        """The smallest remaining across buckets, windowed ones in the window of `at` (default: now)."""
        ...

    async def revoked_each(self, tenant: str, revocation_ids: tuple[str, ...]) -> list[bool]:
        """Whether each id itself is revoked, in one round trip (listings)."""
        ...

    async def remaining_each(self, tenant: str, buckets: tuple[Bucket, ...], *, at: float | None = None) -> list[int]:
        """Each bucket's own remaining credits, in one round trip (listings: a page of tokens)."""
        ...

    async def balances_each(
        self, tenant: str, buckets: tuple[Bucket, ...], *, at: float | None = None
    ) -> list[tuple[int, int | None]]:
        """Each bucket's (remaining, limit now), in one round trip: a windowed bucket's limit with its changes
        (the one a page or an alert must name after a budget change); None for a lifetime bucket, whose one
        counter holds its spending and its changes alike."""
        ...

    async def adjust(
        self, tenant: str, bucket: Bucket, delta: int, change_id: str, *, at: float | None = None
    ) -> BudgetAdjustment:
        """Move a budget bucket's limit by `delta` credits (a top-up or a cut; a windowed bucket's per-window limit,
        from the window of `at` on), in one atomic step with every debit: the next check sees it. A cut never takes
        the limit below what the bucket has spent. A resend of the same `change_id` (the store's own resend after a
        broken connection) is applied once."""
        ...

    async def set_limit(self, tenant: str, bucket: Bucket, limit: int, *, if_unset: bool = False) -> bool:
        """Make a bucket's limit (a windowed bucket's per-window limit) exactly `limit`, whatever its caveat says,
        in one atomic step with every debit: what it spent stays spent (a limit below that leaves nothing to spend).
        The identity budgets a trust rule sets (SPEC v2.2): the Mint names the limit, tokens never carry one.
        `if_unset`: only when nothing set or changed the limit before. True when the limit was written. Windowed
        buckets only: a lifetime bucket's spending and limit changes share one counter."""
        ...

    async def probe(self) -> None:
        """Raise LedgerUnavailable (LedgerNotInitialised when unmarked) unless the store can serve debits."""
        ...

    async def close(self) -> None: ...
