from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts
from satgate.caveats.grammar import CaveatSyntaxError

MAX_DEPTH = 16
_DEPTH_RE = re.compile(r"0|[1-9][0-9]?")


@dataclass(frozen=True, slots=True)
class MaxDelegationDepth:
    """At most `depth` delegation caveats may follow this one. A property of the token alone, so the
    verifier checks it once (see `exceeded_by`) rather than per request."""

    key: ClassVar[str] = "max_delegation_depth"
    depth: int

    @classmethod
    def parse(cls, value: str) -> Self:
        if not _DEPTH_RE.fullmatch(value) or int(value) > MAX_DEPTH:
            raise CaveatSyntaxError(f"caveat 'max_delegation_depth': {value!r} is not an integer in 0..16")
        return cls(depth=int(value))

    def exceeded_by(self, delegations_after: int) -> bool:
        return delegations_after > self.depth

    def check(self, facts: RequestFacts) -> Denial | None:
        return None
