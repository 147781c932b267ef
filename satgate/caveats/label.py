from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts


@dataclass(frozen=True, slots=True)
class Label:
    """Free text for attribution; always holds."""

    key: ClassVar[str] = "label"
    text: str

    @classmethod
    def parse(cls, value: str) -> Self:
        return cls(text=value)

    def check(self, facts: RequestFacts) -> Denial | None:
        return None
