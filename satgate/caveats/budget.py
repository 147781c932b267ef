from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts
from satgate.caveats.grammar import CaveatSyntaxError

MAX_BUDGET = 10**15
_CANONICAL_INT_RE = re.compile(r"[1-9][0-9]{0,15}")


@dataclass(frozen=True, slots=True)
class Budget:
    """A credit limit. Enforced by the ledger: its bucket id is the chain signature right after it."""

    key: ClassVar[str] = "budget"
    credits: int

    @classmethod
    def parse(cls, value: str) -> Self:
        if not _CANONICAL_INT_RE.fullmatch(value) or int(value) > MAX_BUDGET:
            raise CaveatSyntaxError(f"caveat 'budget': {value!r} is not an integer in 1..10^15")
        return cls(credits=int(value))

    def check(self, facts: RequestFacts) -> Denial | None:
        return None
