from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts, caveat_failed
from satgate.caveats.grammar import split_valid_list

_HOST_RE = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9.\-]*[a-z0-9])?|\*")


@dataclass(frozen=True, slots=True)
class Hosts:
    """`api.example.com` exact; `*.corp` any name under corp (not `corp` itself); `*` any host."""

    key: ClassVar[str] = "hosts"
    exact: frozenset[str]
    suffixes: tuple[str, ...]
    any_host: bool

    @classmethod
    def parse(cls, value: str) -> Self:
        entries = split_valid_list(value.lower(), cls.key, _HOST_RE.fullmatch, "invalid host pattern(s)")
        return cls(
            exact=frozenset(e for e in entries if not e.startswith("*")),
            suffixes=tuple(e[1:] for e in entries if e.startswith("*.")),
            any_host="*" in entries,
        )

    def check(self, facts: RequestFacts) -> Denial | None:
        if self.any_host or facts.host in self.exact or facts.host.endswith(self.suffixes):
            return None
        return caveat_failed(self.key, f"host {facts.host} is not allowed by this token")
