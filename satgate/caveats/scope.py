from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts
from satgate.caveats.grammar import split_valid_list

# Segments of [A-Za-z0-9_.-] joined by ':'; a pattern may be '*' or end in ':*'.
TOOL_SCOPE_PREFIX = "mcp:tool:"
_SCOPE_RE = re.compile(r"[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*")


def is_valid_scope(scope: str) -> bool:
    return _SCOPE_RE.fullmatch(scope) is not None


def is_valid_pattern(pattern: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(":*"):
        return is_valid_scope(pattern[:-2])
    return is_valid_scope(pattern)


def scope_matches(pattern: str, scope: str) -> bool:
    """`*` matches all; `a:*` matches `a:<one or more segments>` but not `a`; otherwise exact."""
    if pattern == "*":
        return True
    if pattern.endswith(":*"):
        prefix = pattern[:-1]  # keeps the ':'
        return len(scope) > len(prefix) and scope.startswith(prefix)
    return pattern == scope


@dataclass(frozen=True, slots=True)
class Scope:
    """Every scope the route requires, and `mcp:tool:<name>` for every MCP tool the request calls, must be
    matched by some pattern of THIS caveat. (Whether the token was granted a required scope at all is the
    verifier's sealed grants, judged by the pipeline.)"""

    key: ClassVar[str] = "scope"
    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, value: str) -> Self:
        return cls(patterns=split_valid_list(value, cls.key, is_valid_pattern, "invalid pattern(s)"))

    def check(self, facts: RequestFacts) -> Denial | None:
        for required in facts.required_scopes:
            if not self.permits(required):
                return Denial(403, "insufficient_scope", f"scope {required!r} is required", self.key)
        for tool in facts.mcp_tools:
            if not self.permits(f"{TOOL_SCOPE_PREFIX}{tool}"):
                return Denial(403, "insufficient_scope", f"scope '{TOOL_SCOPE_PREFIX}{tool}' is required", self.key)
        return None

    def permits(self, scope: str) -> bool:
        return any(scope_matches(p, scope) for p in self.patterns)
