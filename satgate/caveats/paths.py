from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts, caveat_failed
from satgate.caveats.grammar import split_valid_list


@dataclass(frozen=True, slots=True)
class Paths:
    """Path equals an entry, or starts with it when the entry ends in `*`. Envoy normalises the path
    before ext_authz sees it (normalize_path, merge_slashes), so `..` tricks never reach here."""

    key: ClassVar[str] = "paths"
    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, value: str) -> Self:
        entries = split_valid_list(value, cls.key, lambda e: e.startswith("/"), "entries must start with '/'")
        return cls(
            exact=frozenset(e for e in entries if not e.endswith("*")),
            prefixes=tuple(e[:-1] for e in entries if e.endswith("*")),
        )

    def check(self, facts: RequestFacts) -> Denial | None:
        if facts.path in self.exact or facts.path.startswith(self.prefixes):
            return None
        return caveat_failed(self.key, f"path {facts.path} is not allowed by this token")
