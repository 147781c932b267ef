from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts
from satgate.caveats.budget import MAX_BUDGET
from satgate.caveats.grammar import CaveatSyntaxError
from satgate.ledger.windows import Period, PeriodSyntaxError

_VALUE_RE = re.compile(r"([1-9][0-9]{0,15})/([0-9a-z]{1,8})")


@dataclass(frozen=True, slots=True)
class BudgetWindow:
    """`<credits>/<period>`: a credit limit per window (SPEC v2.1). Enforced by the ledger, keyed by the chain
    signature right after it (as `budget`) and the window the check falls in."""

    key: ClassVar[str] = "budget_window"
    credits: int
    period: Period

    @classmethod
    def parse(cls, value: str) -> Self:
        match = _VALUE_RE.fullmatch(value)
        if match is None or int(match[1]) > MAX_BUDGET:
            raise CaveatSyntaxError(
                f"caveat 'budget_window': {value!r} is not <credits>/<period> with credits in 1..10^15"
            )
        try:
            period = Period.parse(match[2])
        except PeriodSyntaxError as exc:
            raise CaveatSyntaxError(f"caveat 'budget_window': {exc}") from None
        return cls(credits=int(match[1]), period=period)

    def __str__(self) -> str:
        return f"{self.credits}/{self.period}"

    def check(self, facts: RequestFacts) -> Denial | None:
        return None
