"""The token registry, budget changes and usage through the admin API (SPEC: Control plane). Remaining credits
come from the ledger, the same one the authz servers debit, so what an admin sees is what the next check sees;
a budget change is applied by the ledger in the same atomic step as debits, then recorded and audited."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from mint_server.exchange.service import ExchangeDenied
from satgate.audit import AuditEvent, AuditLog
from satgate.caveats.budget_window import BudgetWindow
from satgate.control_plane.store import BudgetChangeRecord, ControlPlaneStore, DelegationRecord, TokenRecord
from satgate.ledger import Bucket, Ledger, LedgerUnavailable
from satgate.ledger.windows import Period
from satgate.timefmt import format_utc, parse_duration
from satgate.tokens.verify import VerifiedToken
from satgate.usage import UsageSink, grouping

T = TypeVar("T")


async def answered(call: Awaitable[T]) -> T:
    """A ledger read or change, or 503: the ledger cannot answer, nothing is assumed."""
    try:
        return await call
    except LedgerUnavailable:
        raise ExchangeDenied(503, "unavailable", "ledger unavailable") from None


async def changed_budget(
    ledger: Ledger,
    store: ControlPlaneStore,
    admin: VerifiedToken,
    bucket: Bucket,
    delta: int,
    *,
    target_id: str,
    reason: str,
) -> BudgetChangeRecord:
    """A top-up or cut of one bucket, in the ledger's atomic step with the debits, then recorded (409 below spent)."""
    change = await answered(ledger.adjust(admin.tenant, bucket, delta, secrets.token_hex(16)))
    if not change.applied:
        spent = "spent in the current window" if bucket.period is not None else "spent"
        raise ExchangeDenied(
            409,
            "below_spent",
            f"a cut of {-delta} would take the budget below what is {spent}: {change.remaining} credits remain, "
            f"so cut at most {change.remaining}",
        )
    record = BudgetChangeRecord(
        tenant=admin.tenant,
        target_id=target_id,
        bucket_id=bucket.bucket_id,
        delta=delta,
        remaining=change.remaining,
        actor=admin.token_id,
        reason=reason[:200],
        changed_at=time.time(),
    )
    await store.record_budget_change(record)
    return record


class TokenAdmin:
    def __init__(self, *, store: ControlPlaneStore, ledger: Ledger, audit: AuditLog, usage: UsageSink | None) -> None:
        self._store = store
        self._ledger = ledger
        self._audit = audit
        self._usage = usage

    async def _listed(self, tenant: str, records: list[Any], id_field: str) -> list[dict[str, Any]]:
        """Records with their remaining credits (a windowed budget's in its current window, with when it resets)
        and revocation: two ledger round trips for the whole page."""
        now = time.time()
        wanted: list[tuple[int, str, Bucket]] = []
        for i, r in enumerate(records):
            if (lifetime := _credits_bucket(r)) is not None:
                wanted.append((i, "lifetime", lifetime))
            if (window := _window_bucket(r)) is not None:
                wanted.append((i, "window", window))
        balances = await answered(self._ledger.balances_each(tenant, tuple(b for _, _, b in wanted), at=now))
        remaining: list[int | None] = [None] * len(records)
        limits: list[int | None] = [None] * len(records)
        windows: list[dict[str, Any] | None] = [None] * len(records)
        for (i, kind, bucket), (left, limit) in zip(wanted, balances, strict=True):
            if kind == "lifetime":
                remaining[i] = left
                limits[i] = limit  # an identity budget's limit now (a policy change, a top-up)
            else:
                credits = BudgetWindow.parse(records[i].budget_window).credits if limit is None else limit
                windows[i] = _window_state(bucket, left, now, credits)
        ids = tuple(getattr(r, id_field) for r in records)
        revoked = await answered(self._ledger.revoked_each(tenant, ids))
        listed = [
            {**r.to_json(), "remaining": left, "window": window, "revoked": gone}
            for r, left, window, gone in zip(records, remaining, windows, revoked, strict=True)
        ]
        if id_field == "token_id":  # registry tokens: an identity budget's limit now, and when its period refills
            for shown, limit, record in zip(listed, limits, records, strict=True):
                shown["budget_limit"] = limit
                own = _credits_bucket(record)
                period = own.period if own is not None else None
                shown["budget_resets_at"] = None if period is None else format_utc(period.window_end(now))
        return listed

    async def list_tokens(
        self, admin: VerifiedToken, *, policy: str | None, label: str | None, before: float | None, limit: int
    ) -> dict[str, Any]:
        records = await self._store.tokens(admin.tenant, policy=policy, label=label, before=before, limit=limit)
        shown = await self._listed(admin.tenant, records, "token_id")
        return {"tokens": shown, "next_before": records[-1].issued_at if len(records) == limit else None}

    async def get(self, admin: VerifiedToken, token_id: str) -> dict[str, Any]:
        record = await self._store.token(admin.tenant, token_id)
        if record is None:
            raise ExchangeDenied(
                404, "not_found", f"no token {token_id} issued by this Mint in tenant {admin.tenant!r}"
            )
        delegations = await self._store.delegations(admin.tenant, token_id)
        changes = await self._store.budget_changes(admin.tenant, token_id)
        return {
            "token": (await self._listed(admin.tenant, [record], "token_id"))[0],
            "delegations": await self._listed(admin.tenant, delegations, "delegation_id"),
            "budget_changes": [c.to_json() for c in changes],
        }

    async def _budgeted(self, tenant: str, target_id: str, which: str) -> tuple[Bucket, TokenRecord | DelegationRecord]:
        """The bucket a change targets: `which` "lifetime", "window", or "" (its lifetime budget, else its
        window's)."""
        if which not in ("", "lifetime", "window"):
            raise ExchangeDenied(400, "bad_request", "bucket: lifetime or window")
        target: TokenRecord | DelegationRecord | None = await self._store.token(tenant, target_id)
        if target is None:
            target = await self._store.delegation(tenant, target_id)
        if target is None:
            raise ExchangeDenied(404, "not_found", f"no token or delegation {target_id} in tenant {tenant!r}")
        lifetime = _credits_bucket(target)
        window = _window_bucket(target)
        bucket = {"lifetime": lifetime, "window": window}.get(which) if which else (lifetime or window)
        if bucket is None:
            kind = {"lifetime": "lifetime budget", "window": "budget_window"}.get(which, "budget")
            raise ExchangeDenied(
                400, "no_budget", f"{target_id} carries no {kind} of its own: change its parent's, or delegate anew"
            )
        return bucket, target

    async def change_budget(
        self, admin: VerifiedToken, target_id: str, delta: int, reason: str, *, bucket: str = ""
    ) -> dict[str, Any]:
        """A top-up (delta > 0) or a cut (delta < 0) of the budget that token or delegation carries; of a windowed
        budget, its per-window limit from the current window on."""
        chosen, _ = await self._budgeted(admin.tenant, target_id, bucket)
        record = await changed_budget(
            self._ledger, self._store, admin, chosen, delta, target_id=target_id, reason=reason
        )
        details: dict[str, Any] = {"delta": delta, "remaining": record.remaining, "reason": reason[:200]}
        if chosen.period is not None:
            details["window"] = str(chosen.period)
        await self._audit.append(
            AuditEvent(
                type="budget_change", tenant=admin.tenant, actor=admin.token_id, token_id=target_id, details=details
            )
        )
        return record.to_json()

    def _parsed(self, by: str, since: str) -> float:
        """`since` in seconds, after checking both (400 otherwise) and that usage is recorded (404)."""
        if self._usage is None:
            raise ExchangeDenied(404, "not_found", "usage records are off (authz.usage.enabled: false)")
        try:
            if by != "label":
                grouping(by)
            return parse_duration(since)
        except ValueError as exc:
            raise ExchangeDenied(400, "bad_request", str(exc).replace("--by", "by")) from None

    async def usage(self, admin: VerifiedToken, *, by: str, since: str) -> dict[str, Any]:
        start = time.time() - self._parsed(by, since)
        assert self._usage is not None
        if by != "label":
            return {"by": by, "since": since, "rows": await self._usage.report(by, start, tenant=admin.tenant)}
        rows = await self._usage.report("token", start, tenant=admin.tenant)
        return {"by": by, "since": since, "rows": await self._labelled(admin.tenant, rows)}

    async def usage_timeline(self, admin: VerifiedToken, *, by: str, since: str, step_seconds: int) -> dict[str, Any]:
        """Per time slot and key (token, label, route, tenant or attr:<key>): requests and credits."""
        start = time.time() - self._parsed(by, since)
        assert self._usage is not None
        if by != "label":
            rows = await self._usage.timeline(start, step_seconds, tenant=admin.tenant, by=by)
        else:
            rows = await self._usage.timeline(start, step_seconds, tenant=admin.tenant, by="token")
            rows = await self._labelled(admin.tenant, rows)
        return {"by": by, "since": since, "step_seconds": step_seconds, "start": start, "rows": rows}

    async def _labelled(self, tenant: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows by token summed by the token's label (from the registry): a delegated child's requests count under
        its root token's label, as usage is recorded by the token id of the chain."""
        labels = await self._store.labels(tenant, sorted({r["key"] for r in rows if r["key"]}))
        totals: dict[tuple[Any, str | None], dict[str, Any]] = {}
        for row in rows:
            label = labels.get(row["key"]) if row["key"] else None
            slot = row.get("start")
            empty = {"key": label, "requests": 0, "allowed": 0, "denied": 0, "credits": 0}
            total = totals.setdefault((slot, label), empty if slot is None else {"start": slot, **empty})
            for field in ("requests", "allowed", "denied", "credits"):
                total[field] += row[field]
        return sorted(totals.values(), key=lambda r: (r.get("start", 0), -r["credits"], r["key"] or ""))

    async def window_history(
        self, tenant: str, token_id: str, budget_window: str, windows: int = 8
    ) -> list[dict[str, Any]]:
        """Credits spent per window of a token's `budget_window` (its own and its delegations' requests: usage is
        recorded by the chain's token id), newest first, as far back as usage is retained. Slots of fixed periods
        are the windows themselves (both are epoch-aligned); months are summed from days."""
        if self._usage is None:
            return []
        period = BudgetWindow.parse(budget_window).period
        now = time.time()
        current = period.index(now)
        first = current - windows + 1
        step = period.seconds or 86400
        rows = await self._usage.timeline(period.start(first), step, tenant=tenant, by="token")
        spent: dict[int, int] = {}
        for row in rows:  # credits net of refunds and settlements (their usage rows move credits, not requests)
            if row["key"] == token_id:
                index = period.index(row["start"])
                spent[index] = spent.get(index, 0) + row["credits"]
        return [
            {
                "window_start": format_utc(period.start(index)),
                "window_end": format_utc(period.end(index)),
                "current": index == current,
                "credits": spent.get(index, 0),
            }
            for index in range(current, first - 1, -1)
        ]

    async def overview(self, tenant: str, since: float, step_seconds: int) -> dict[str, Any]:
        """Per slot: requests allowed and denied, credits spent (usage) and tokens issued (the registry)."""
        used = await self._usage.timeline(since, step_seconds, tenant=tenant) if self._usage is not None else []
        issued = await self._store.issued_timeline(tenant, since, step_seconds)
        by_start = {row["start"]: row for row in used}
        first = int(since) // step_seconds * step_seconds
        slots = []
        for start in range(first, int(time.time()) + 1, step_seconds):
            row = by_start.get(start, {})
            slots.append(
                {
                    "start": start,
                    "allowed": row.get("allowed", 0),
                    "denied": row.get("denied", 0),
                    "credits": row.get("credits", 0),
                    "issued": issued.get(start, 0),
                }
            )
        return {"slots": slots, "usage_recorded": self._usage is not None}

    async def close(self) -> None:
        if self._usage is not None:
            await self._usage.close()


def _identity(record: TokenRecord | DelegationRecord) -> bool:
    """Its buckets are a trust rule's identity budget (SPEC v2.2), shared and limited by the ledger."""
    return isinstance(record, TokenRecord) and record.budget_per is not None


def _credits_bucket(record: TokenRecord | DelegationRecord) -> Bucket | None:
    """The bucket of its budget_credits: its own, or (identity budgets) the rule's for its ttl period."""
    if record.bucket_id is None or record.budget_credits is None:
        return None
    if isinstance(record, TokenRecord) and _identity(record) and record.budget_period is not None:
        return Bucket(record.bucket_id, 0, Period.parse(record.budget_period))
    return Bucket(record.bucket_id, record.budget_credits)


def _window_bucket(record: TokenRecord | DelegationRecord) -> Bucket | None:
    if record.window_bucket_id is None or record.budget_window is None:
        return None
    window = BudgetWindow.parse(record.budget_window)
    return Bucket(record.window_bucket_id, 0 if _identity(record) else window.credits, window.period)


def _window_state(bucket: Bucket, remaining: int, now: float, credits: int | None = None) -> dict[str, Any]:
    assert bucket.period is not None
    index = bucket.period.index(now)
    return {
        "credits": bucket.limit if credits is None else credits,
        "period": str(bucket.period),
        "window_start": format_utc(bucket.period.start(index)),
        "resets_at": format_utc(bucket.period.end(index)),
        "remaining": remaining,
    }
