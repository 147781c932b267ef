"""A delegation step: a child token with a fresh `delegation` caveat first (its revocation id), then tighter
limits. Used by the Mint (which also records the tree) and offline by holders (CLI, SDK)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from satgate.caveats import CaveatSyntaxError, split_caveat
from satgate.ledger.base import Bucket
from satgate.timefmt import format_utc, parse_utc
from satgate.tokens import wire
from satgate.tokens.mint import CaveatSpec, attenuate


@dataclass(frozen=True)
class Delegated:
    token: str
    delegation_id: str
    expires_at: float
    caveats: tuple[CaveatSpec, ...]


def delegate(
    token: str,
    *,
    ttl_seconds: int,
    budget_credits: int | None = None,
    budget_window: str | None = None,
    scopes: Iterable[str] = (),
    label: str | None = None,
    caveats: Mapping[str, str] | None = None,
    not_after: float | None = None,
    attribute_keys: Iterable[str] = (),
) -> Delegated:
    """The child's expiry is capped by the parent's (its `expires` caveats, read without a key) and by
    `not_after`, so what it reports is what the verifier will enforce — attenuation only narrows anyway.
    `budget_window` (`500/1d`): a per-window cap of its own, beside the parent's budgets
    (a malformed one is refused by attenuate, as every caveat is)."""
    expires_at = time.time() + ttl_seconds
    for cap in (not_after, earliest_expiry(token)):
        if cap is not None:
            expires_at = min(expires_at, cap)
    delegation_id = secrets.token_hex(16)
    specs: list[CaveatSpec] = [("delegation", delegation_id), ("expires", format_utc(expires_at))]
    scope_list = list(scopes)
    if scope_list:
        specs.append(("scope", ",".join(scope_list)))
    if budget_credits is not None:
        specs.append(("budget", str(budget_credits)))
    if budget_window is not None:
        specs.append(("budget_window", budget_window))
    if label:
        specs.append(("label", label))
    specs.extend(sorted((caveats or {}).items()))
    child = attenuate(token, specs, attribute_keys=attribute_keys)
    return Delegated(child, delegation_id, expires_at, tuple(specs))


def earliest_expiry(token: str) -> float | None:
    """The soonest `expires` caveat of a token (unverified: used only to cap what a child reports)."""
    soonest = None
    for raw in wire.decode(token).caveats:
        try:
            key, value = split_caveat(raw)
            if key == "expires":
                at = parse_utc(value)
                soonest = at if soonest is None else min(soonest, at)
        except (CaveatSyntaxError, ValueError):
            continue  # the verifier refuses such a token anyway
    return soonest


def own_buckets(buckets: Sequence[Bucket], *, budget: bool, window: bool) -> tuple[str | None, str | None]:
    """The lifetime and windowed bucket ids a delegation step (or a root token) added: the last of each kind in
    its chain, as its own caveats come after everything it inherited. A budget change targets these."""
    lifetime = next((b.bucket_id for b in reversed(buckets) if b.period is None), None) if budget else None
    windowed = next((b.bucket_id for b in reversed(buckets) if b.period is not None), None) if window else None
    return lifetime, windowed
