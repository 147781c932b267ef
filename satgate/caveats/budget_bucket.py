"""`budget_bucket = <bucket id>/<period>` (SPEC v2.2, identity budgets): the bucket a trust rule's budget lives in,
shared by every token the Mint issues for one budget key (an identity, a workflow run, the rule's pool). Its limit
is held by the ledger, set by the Mint; the token carries none, so no token brings back an older limit. Only the
issuer may place it (before the seal): a holder who appended another's bucket id could drain that budget."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts
from satgate.caveats.grammar import CaveatSyntaxError
from satgate.ledger.windows import Period, PeriodSyntaxError

_VALUE_RE = re.compile(r"([0-9a-f]{32})/([0-9a-z]{1,8})")


@dataclass(frozen=True, slots=True)
class BudgetBucket:
    key: ClassVar[str] = "budget_bucket"
    bucket_id: str
    period: Period

    @classmethod
    def parse(cls, value: str) -> Self:
        match = _VALUE_RE.fullmatch(value)
        if match is None:
            raise CaveatSyntaxError(f"caveat 'budget_bucket': {value!r} is not <32 lowercase hex>/<period>")
        try:
            period = Period.parse(match[2])
        except PeriodSyntaxError as exc:
            raise CaveatSyntaxError(f"caveat 'budget_bucket': {exc}") from None
        return cls(bucket_id=match[1], period=period)

    def __str__(self) -> str:
        return f"{self.bucket_id}/{self.period}"

    def check(self, facts: RequestFacts) -> Denial | None:
        return None  # the ledger judges it, with the chain's other buckets
