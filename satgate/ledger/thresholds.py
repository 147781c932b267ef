"""Threshold alerts (SPEC v2.1): which configured fractions of a bucket's limit a debit's spending crossed, decided
from the debit's own numbers. The stores record each crossing once per bucket, threshold and window."""

from __future__ import annotations

DEFAULT_PERMILLE = (800, 1000)


def mark(permille: int, limit: int) -> int:
    """The spending at which `permille` of `limit` is reached (ceil: 80 % of 3 credits is reached at 3)."""
    return -(-permille * limit // 1000)


def crossed(permilles: tuple[int, ...], limit: int, spent_before: int, spent_after: int) -> list[int]:
    return [p for p in permilles if spent_before < mark(p, limit) <= spent_after]
