from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts
from satgate.caveats.grammar import parse_instant


@dataclass(frozen=True, slots=True)
class NotBefore:
    """Holds once now >= value (- leeway)."""

    key: ClassVar[str] = "not_before"
    at: float
    text: str

    @classmethod
    def parse(cls, value: str) -> Self:
        return cls(at=parse_instant(value, cls.key), text=value)

    def check(self, facts: RequestFacts) -> Denial | None:
        if facts.now >= self.at - facts.leeway_seconds:
            return None
        return Denial(401, "not_yet_valid", f"token is not valid before {self.text}", self.key)
