from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts
from satgate.caveats.grammar import CaveatSyntaxError

_DELEGATION_ID_RE = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Delegation:
    """Marks one delegation step; its id is a revocation id checked by the ledger."""

    key: ClassVar[str] = "delegation"
    delegation_id: str

    @classmethod
    def parse(cls, value: str) -> Self:
        if not _DELEGATION_ID_RE.fullmatch(value):
            raise CaveatSyntaxError(f"caveat 'delegation': {value!r} is not 32 lowercase hex")
        return cls(delegation_id=value)

    def check(self, facts: RequestFacts) -> Denial | None:
        return None
