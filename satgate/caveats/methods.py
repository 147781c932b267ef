from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts, caveat_failed
from satgate.caveats.grammar import CaveatSyntaxError, split_list

_METHOD_RE = re.compile(r"[A-Z]{1,16}")


@dataclass(frozen=True, slots=True)
class Methods:
    key: ClassVar[str] = "methods"
    allowed: frozenset[str]

    @classmethod
    def parse(cls, value: str) -> Self:
        methods = split_list(value, cls.key)
        bad = [m for m in methods if not _METHOD_RE.fullmatch(m)]
        if bad:
            raise CaveatSyntaxError(f"caveat 'methods': {', '.join(bad)} are not HTTP methods (uppercase)")
        return cls(allowed=frozenset(methods))

    def check(self, facts: RequestFacts) -> Denial | None:
        if facts.method in self.allowed:
            return None
        return caveat_failed(self.key, f"method {facts.method} is not allowed by this token")
