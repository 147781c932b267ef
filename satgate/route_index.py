"""First-match-wins over a route table without scanning it: rules are indexed by host (exact, `*.suffix`, any),
then by path prefix, one dict lookup per distinct prefix length, then methods. The answer is exactly the linear
scan's: the lowest-numbered rule that matches (RouteRule.matches stays the reference the tests compare with).
Prefixes match regardless of ASCII case: an upstream that serves `/V1/premium` as `/v1/premium` gets that route's
settings for it (the shipped Envoy routes are `case_sensitive: false` too)."""

from __future__ import annotations

import bisect
import string
from collections.abc import Sequence
from typing import Protocol

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # keeps lengths, unlike str.lower


def fold_case(path: str) -> str:
    return path.translate(_ASCII_LOWER)


class _Rule(Protocol):
    @property
    def path_prefix(self) -> str: ...
    @property
    def host(self) -> str | None: ...
    @property
    def methods(self) -> frozenset[str] | None: ...


class _ByPrefix:
    """Rules under one host key, by their path prefix; each prefix's rules in table order."""

    def __init__(self) -> None:
        self._rules: dict[str, list[tuple[int, frozenset[str] | None]]] = {}
        self._lengths: list[int] = []  # the distinct prefix lengths, ascending

    def add(self, index: int, prefix: str, methods: frozenset[str] | None) -> None:
        self._rules.setdefault(prefix, []).append((index, methods))
        position = bisect.bisect_left(self._lengths, len(prefix))
        if position == len(self._lengths) or self._lengths[position] != len(prefix):
            self._lengths.insert(position, len(prefix))

    def first(self, path: str, method: str, best: int) -> int:
        """The lowest rule index below `best` whose prefix starts `path` and whose methods allow `method`."""
        for length in self._lengths:
            if length > len(path):
                break
            for index, methods in self._rules.get(path[:length], ()):
                if index >= best:
                    break
                if methods is None or method in methods:
                    best = index
                    break
        return best


class RouteIndex:
    def __init__(self, rules: Sequence[_Rule]) -> None:
        self._exact: dict[str, _ByPrefix] = {}
        self._suffix: dict[str, _ByPrefix] = {}  # "*.example.com" under ".example.com"
        self._any = _ByPrefix()
        for index, rule in enumerate(rules):
            if rule.host is None or rule.host == "*":
                group = self._any
            elif rule.host.startswith("*."):
                group = self._suffix.setdefault(rule.host[1:], _ByPrefix())
            else:
                group = self._exact.setdefault(rule.host, _ByPrefix())
            group.add(index, fold_case(rule.path_prefix), rule.methods)
        self._size = len(rules)

    def first_match(self, host: str, path: str, method: str) -> int:
        """The matching rule's index in the table, or -1."""
        path = fold_case(path)
        best = self._any.first(path, method, self._size)
        exact = self._exact.get(host)
        if exact is not None:
            best = exact.first(path, method, best)
        if self._suffix:
            dot = host.find(".")
            while dot >= 0:  # every ".suffix" of the host, longest first
                group = self._suffix.get(host[dot:])
                if group is not None:
                    best = group.first(path, method, best)
                dot = host.find(".", dot + 1)
        return best if best < self._size else -1
