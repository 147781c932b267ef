from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts, caveat_failed
from satgate.caveats.grammar import split_valid_list

_METHOD_RE = re.compile(r"[A-Z]{1,16}")


@dataclass(frozen=True, slots=True)
class Methods:
    key: ClassVar[str] = "methods"
    allowed: frozenset[str]

    @classmethod
    def parse(cls, value: str) -> Self:
        methods = split_valid_list(value, cls.key, _METHOD_RE.fullmatch, "not uppercase HTTP methods")
        return cls(allowed=frozenset(methods))

    def check(self, facts: RequestFacts) -> Denial | None:
        if facts.method in self.allowed:
            return None
        return caveat_failed(self.key, f"method {facts.method} is not allowed by this token")
