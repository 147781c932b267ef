"""What a revocation id refers to, in what this deployment recorded. A revocation of an id nobody issued still
succeeds in the ledger and protects nothing, so a typo in the id or the tenant (or another tenant's id) is
reported as such instead of answered with success."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from satgate.control_plane.store import ControlPlaneStore

ISSUING_EVENTS = frozenset({"mint", "exchange", "delegate"})

Recorded = Literal["token", "delegation"]


async def recorded_as(
    tenant: str, revocation_id: str, audit_records: Iterable[dict[str, Any]], store: ControlPlaneStore | None
) -> Recorded | None:
    """ "token" when a token with this id was issued in `tenant` (minted, exchanged, or the root of a delegation),
    "delegation" for a delegation step there, None when nothing recorded carries it."""
    if store is not None:
        if await store.subtree(tenant, revocation_id):
            return "delegation"
        if await store.delegations(tenant, revocation_id):
            return "token"
    for record in audit_records:
        if record.get("tenant") != tenant or record.get("type") not in ISSUING_EVENTS:
            continue
        if record.get("token_id") == revocation_id:
            return "token"
        if (record.get("details") or {}).get("delegation_id") == revocation_id:
            return "delegation"
    return None
