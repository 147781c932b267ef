"""Identity budgets through the admin API (SPEC v2.2): a policy's budgets by rule and identity, with what they
have left now, and one identity's top-up or cut — held by the ledger, audited like every budget change."""

from __future__ import annotations

import time
from typing import Any

from mint_server.admin.registry import answered, changed_budget
from mint_server.exchange.service import ExchangeDenied
from satgate.audit import AuditEvent, AuditLog
from satgate.control_plane.store import ControlPlaneStore
from satgate.ledger import Bucket, Ledger
from satgate.ledger.windows import Period
from satgate.timefmt import format_utc
from satgate.tokens.verify import VerifiedToken

_SHOWN_IDENTITIES = 20


def _buckets(row: dict[str, Any]) -> list[tuple[str, Bucket]]:
    found = []
    if row["bucket_id"] and row["budget_period"]:
        found.append(("credits", Bucket(row["bucket_id"], 0, Period.parse(row["budget_period"]))))
    if row["window_bucket_id"] and row["budget_window"]:
        found.append(("window", Bucket(row["window_bucket_id"], 0, Period.parse(row["budget_window"].split("/")[1]))))
    return found


class IdentityBudgetAdmin:
    def __init__(self, *, store: ControlPlaneStore, ledger: Ledger, audit: AuditLog) -> None:
        self._store, self._ledger, self._audit = store, ledger, audit

    async def list(self, admin: VerifiedToken, policy: str) -> dict[str, Any]:
        budgets: dict[str, dict[str, Any]] = {}
        wanted: dict[str, Bucket] = {}
        for row in await self._store.identity_budget_holders(admin.tenant, policy):
            for kind, bucket in _buckets(row):
                shown = budgets.setdefault(
                    bucket.bucket_id,
                    {
                        "rule": row["budget_rule"],
                        "kind": kind,
                        "bucket_id": bucket.bucket_id,
                        "identities": [],
                        "tokens": 0,
                        "period": str(bucket.period),
                    },
                )
                shown["tokens"] += row["issued"]
                if row["subject"] and len(shown["identities"]) < _SHOWN_IDENTITIES:
                    shown["identities"].append(row["subject"])
                wanted[bucket.bucket_id] = bucket
        now = time.time()
        buckets = tuple(wanted.values())
        balances = await answered(self._ledger.balances_each(admin.tenant, buckets, at=now))
        for bucket, (left, limit) in zip(buckets, balances, strict=True):
            assert bucket.period is not None
            budgets[bucket.bucket_id].update(
                remaining=left, limit=limit, resets_at=format_utc(bucket.period.window_end(now))
            )
        return {"policy": policy, "budgets": sorted(budgets.values(), key=lambda b: (b["rule"], b["identities"]))}

    async def change(
        self, admin: VerifiedToken, policy: str, identity: str, *, delta: int, reason: str, kind: str | None
    ) -> dict[str, Any]:
        """One identity's budget, from the current window on; the next budget change of the policy sets it anew."""
        rows = [r for r in await self._store.identity_budget_holders(admin.tenant, policy) if r["subject"] == identity]
        chosen = [bucket for row in rows for k, bucket in _buckets(row) if k == (kind or "credits")]
        if not chosen:
            raise ExchangeDenied(
                404,
                "not_found",
                f"no {kind or 'credits'} budget of {identity!r} under policy {policy!r} in tenant "
                f"{admin.tenant!r} (it has exchanged under the policy? ListIdentityBudgets shows who has one)",
            )
        bucket = chosen[0]
        record = await changed_budget(
            self._ledger, self._store, admin, bucket, delta, target_id=bucket.bucket_id, reason=reason
        )
        await self._audit.append(
            AuditEvent(
                type="budget_change",
                tenant=admin.tenant,
                actor=admin.token_id,
                policy=policy,
                details={
                    "identity": identity,
                    "identity_budget": bucket.bucket_id,
                    "delta": delta,
                    "remaining": record.remaining,
                    "reason": reason[:200],
                    "window": str(bucket.period),
                },
            )
        )
        return record.to_json()
