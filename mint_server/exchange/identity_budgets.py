"""Identity budgets (SPEC v2.2): a trust rule's budget is a ceiling of what the rule matched, not of one token.

Every token the Mint issues under a rule for the same budget key — the identity's subject by default, a claim
template (`{{ .Claims.run_id }}`: one budget per workflow run), or the whole rule (`policy`) — names the same
bucket in a sealed `budget_bucket` caveat, so re-exchanges, refreshes and concurrent exchanges draw on one
budget. The bucket id is derived here from (tenant, policy, rule, kind, period, key): no holder can choose or
reset it. Its limit lives in the ledger, set by the Mint, so a policy's change applies to buckets that exist and
no token carries a limit an older policy gave it. The period: the rule's `budget_window`, else its `ttl`."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from mint_server.policies.models import Identity, TrustPolicy, TrustRule, render_label
from satgate.audit import AuditEvent, AuditLog
from satgate.caveats.budget_window import BudgetWindow
from satgate.control_plane.store import ControlPlaneStore
from satgate.ledger import Bucket, Ledger
from satgate.ledger.windows import MAX_PERIOD_COUNT, Period
from satgate.timefmt import format_utc, parse_duration

CREDITS, WINDOW = "credits", "window"  # budget_credits (per ttl period) and budget_window (per its window)


def tightest(buckets: Sequence[Bucket], lefts: Sequence[int], now: float) -> tuple[int, Bucket, str | None]:
    """The smallest remaining across buckets, its bucket, and when that bucket refills (None: never, lifetime)."""
    left, bucket = min(zip(lefts, buckets, strict=True), key=lambda pair: pair[0])
    return left, bucket, None if bucket.period is None else format_utc(bucket.period.window_end(now))


class NoBudgetKey(Exception):
    """The rule's budget belongs to a claim this identity does not carry: no budget to draw on (refused)."""


@dataclass(frozen=True)
class IdentityBucket:
    kind: str  # CREDITS | WINDOW
    bucket: Bucket  # limit 0: the ledger holds it
    limit: int  # what the rule gives now

    @property
    def caveat(self) -> tuple[str, str]:
        assert self.bucket.period is not None
        return "budget_bucket", f"{self.bucket.bucket_id}/{self.bucket.period}"


def rule_ref(policy: TrustPolicy, rule: TrustRule) -> str:
    """A rule's name, else its position: what its buckets are named by (renaming it starts new budgets)."""
    return rule.name or str(policy.trust_rules.index(rule))


def ttl_period(ttl: str) -> Period:
    """The rule's ttl as a window period a caveat can carry: whole minutes, hours or days, rounded up."""
    seconds = max(parse_duration(ttl), 60)
    for unit in (60, 3600, 86400):
        count = math.ceil(seconds / unit)
        if count <= MAX_PERIOD_COUNT:
            return Period(count * unit)
    return Period(MAX_PERIOD_COUNT * 86400)


def budget_key(rule: TrustRule, identity: Identity) -> str | None:
    """Who the budget belongs to; None for `budget_per: token` (a fresh bucket per token, the old behaviour)."""
    per = rule.issue.budget_per
    if per == "token":
        return None
    if per == "policy":
        return ""
    if per == "identity":
        return identity.subject
    key = render_label(per, identity.claims)
    if not key:
        raise NoBudgetKey(f"this identity carries no value for the rule's budget_per {per!r}")
    return key


def bucket_id(tenant: str, policy: str, rule: str, *, kind: str, period: Period, key: str) -> str:
    parts = ("satgate-identity-budget-v1", tenant, policy, rule, kind, str(period), key)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def rule_buckets(policy: TrustPolicy, rule: TrustRule, key: str) -> list[IdentityBucket]:
    """The buckets a rule's budgets give this key, with the limits the rule sets today."""
    spec, ref = rule.issue, rule_ref(policy, rule)
    found = []
    if spec.budget_credits is not None:
        period = ttl_period(spec.ttl)
        bucket = Bucket(bucket_id(policy.tenant, policy.name, ref, kind=CREDITS, period=period, key=key), 0, period)
        found.append(IdentityBucket(CREDITS, bucket, spec.budget_credits))
    if spec.budget_window is not None:
        window = BudgetWindow.parse(spec.budget_window)
        bucket = Bucket(
            bucket_id(policy.tenant, policy.name, ref, kind=WINDOW, period=window.period, key=key), 0, window.period
        )
        found.append(IdentityBucket(WINDOW, bucket, window.credits))
    return found


class BoundedSet:
    """The identity buckets whose limit this process already saw set: skips the ledger write on re-exchanges.
    Bounded (oldest out first); forgetting one costs one idempotent write."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: dict[tuple[str, str], None] = {}

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self._items

    def add(self, item: tuple[str, str]) -> None:
        self._items[item] = None
        if len(self._items) > self._capacity:
            del self._items[next(iter(self._items))]


def rule_limit(rule: TrustRule, kind: str) -> int | None:
    """What a rule gives a bucket of `kind` today (None: it no longer has such a budget)."""
    if kind == CREDITS:
        return rule.issue.budget_credits
    return BudgetWindow.parse(rule.issue.budget_window).credits if rule.issue.budget_window else None


def budgets_of(policy: TrustPolicy) -> tuple[tuple[int | None, str | None], ...]:
    return tuple((r.issue.budget_credits, r.issue.budget_window) for r in policy.trust_rules)


class RuleBudgets:
    """Carries a policy's budget change to the identity buckets that exist (SPEC v2.2: without resetting what
    they spent), and audits it under the policy's tenant."""

    def __init__(self, ledger: Ledger, store: ControlPlaneStore, audit: AuditLog) -> None:
        self._ledger, self._store, self._audit = ledger, store, audit

    async def apply(self, before: TrustPolicy | None, after: TrustPolicy, actor: str | None) -> int:
        """The buckets set to `after`'s limits (0 when its budgets did not change from `before`'s)."""
        if before is not None and budgets_of(before) == budgets_of(after):
            return 0
        rules = {rule_ref(after, r): r for r in after.trust_rules}
        changed = 0
        for ref, kind, bucket_id, period in await self._store.identity_buckets(after.tenant, after.name):
            rule = rules.get(ref)
            limit = None if rule is None else rule_limit(rule, kind)
            if limit is None:
                continue  # tokens on it keep the limit it had until they expire
            await self._ledger.set_limit(after.tenant, Bucket(bucket_id, 0, Period.parse(period)), limit)
            changed += 1
        if changed:
            await self._audit.append(
                AuditEvent(
                    type="budget_change",
                    tenant=after.tenant,
                    actor=actor,
                    policy=after.name,
                    details={"source": "policy", "identity_buckets": changed, "budgets": list(budgets_of(after))},
                )
            )
        return changed
