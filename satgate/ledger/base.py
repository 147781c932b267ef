"""The ledger contract (SPEC: Ledger): one atomic step that checks revocation, honours idempotency
and debits every budget bucket of a token's chain, or none of them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

IDEMPOTENCY_WINDOW_SECONDS = 600


class LedgerUnavailable(Exception):
    """The store cannot answer; callers must deny (503), never allow."""


@dataclass(frozen=True, slots=True)
class Bucket:
    bucket_id: str  # first 32 hex chars of the chain signature right after the budget caveat
    limit: int


@dataclass(frozen=True, slots=True)
class DebitRequest:
    tenant: str
    revocation_ids: tuple[str, ...]
    buckets: tuple[Bucket, ...]
    cost: int
    idempotency_key: str | None = None  # token fingerprint + x-request-id


class Outcome(enum.Enum):
    DEBITED = "debited"
    REVOKED = "revoked"
    INSUFFICIENT = "insufficient"


@dataclass(frozen=True, slots=True)
class DebitResult:
    outcome: Outcome
    charged: int = 0
    remaining: int | None = None  # smallest remaining across buckets; None when the token has no budget
    replayed: bool = False


class Ledger(Protocol):
    async def debit(self, request: DebitRequest) -> DebitResult: ...

    async def revoke(self, tenant: str, revocation_id: str, reason: str = "") -> bool:
        """True when newly revoked."""
        ...

    async def is_revoked(self, tenant: str, revocation_ids: tuple[str, ...]) -> bool: ...

    async def remaining(self, tenant: str, buckets: tuple[Bucket, ...]) -> int | None: ...

    async def close(self) -> None: ...
