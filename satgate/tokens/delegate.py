"""A delegation step: a child token with a fresh `delegation` caveat first (its revocation id), then tighter
limits. Used by the Mint (which also records the tree) and offline by holders (CLI, SDK)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from satgate.timefmt import format_utc
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
    scopes: Iterable[str] = (),
    label: str | None = None,
    caveats: Mapping[str, str] | None = None,
    not_after: float | None = None,
    attribute_keys: Iterable[str] = (),
) -> Delegated:
    """`not_after` caps the child's expiry (the Mint passes the parent's); the parent's own caveats, expiry
    included, bind the child anyway — attenuation only narrows."""
    expires_at = time.time() + ttl_seconds
    if not_after is not None:
        expires_at = min(expires_at, not_after)
    delegation_id = secrets.token_hex(16)
    specs: list[CaveatSpec] = [("delegation", delegation_id), ("expires", format_utc(expires_at))]
    scope_list = list(scopes)
    if scope_list:
        specs.append(("scope", ",".join(scope_list)))
    if budget_credits is not None:
        specs.append(("budget", str(budget_credits)))
    if label:
        specs.append(("label", label))
    specs.extend(sorted((caveats or {}).items()))
    child = attenuate(token, specs, attribute_keys=attribute_keys)
    return Delegated(child, delegation_id, expires_at, tuple(specs))
