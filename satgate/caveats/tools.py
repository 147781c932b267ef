from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts, caveat_failed
from satgate.caveats.grammar import split_valid_list

_TOOL_PATTERN_RE = re.compile(r"[A-Za-z0-9_.\-/]+\*?|\*")


def tool_matches(pattern: str, tool: str) -> bool:
    if pattern.endswith("*"):
        return tool.startswith(pattern[:-1])
    return pattern == tool


@dataclass(frozen=True, slots=True)
class Tools:
    """Every MCP tool the request calls must match (`search`, `fetch_*`, `*`). Holds trivially on
    requests that call no tool (non-MCP routes)."""

    key: ClassVar[str] = "tools"
    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, value: str) -> Self:
        return cls(patterns=split_valid_list(value, cls.key, _TOOL_PATTERN_RE.fullmatch, "invalid pattern(s)"))

    def check(self, facts: RequestFacts) -> Denial | None:
        for tool in facts.mcp_tools:
            if not any(tool_matches(p, tool) for p in self.patterns):
                return caveat_failed(self.key, f"tool {tool!r} is not allowed by this token")
        return None
