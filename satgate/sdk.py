"""Helpers for agents that hold SatGate tokens."""

from __future__ import annotations

from collections.abc import Iterable

from satgate.timefmt import parse_duration
from satgate.tokens.delegate import Delegated, delegate


def delegate_offline(
    token: str,
    *,
    ttl: str = "1h",
    budget_credits: int | None = None,
    scopes: Iterable[str] = (),
    label: str | None = None,
) -> Delegated:
    """Hand a sub-agent a narrower child without asking anyone: no key is needed, the authz server accepts it
    like a Mint-made child, and revoking `result.delegation_id` (or any ancestor) cuts it off. Unlike
    server-side delegation, the Mint's delegation tree does not know about it."""
    return delegate(token, ttl_seconds=parse_duration(ttl), budget_credits=budget_credits, scopes=scopes, label=label)
