"""Issuing a token for an identity a trust rule matched: its caveats (scopes, the identity's budgets or the
token's own, TTL, label, attributes), the seal, the registry record and the exchange's audit record."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import structlog

from mint_server.exchange.identity_budgets import (
    CREDITS,
    WINDOW,
    BoundedSet,
    IdentityBucket,
    NoBudgetKey,
    budget_key,
    rule_buckets,
    rule_ref,
    tightest,
    ttl_period,
)
from mint_server.exchange.results import ExchangeDenied, ExchangeResult, MintSettings
from mint_server.metrics import MintMetrics
from mint_server.policies.models import Identity, TrustPolicy, TrustRule, render_label
from satgate.audit import AuditEvent, AuditLog
from satgate.control_plane.store import ControlPlaneStore, TokenRecord
from satgate.keyring import KeyringFile
from satgate.ledger import Ledger, LedgerUnavailable
from satgate.timefmt import format_utc, parse_duration
from satgate.tokens.delegate import own_buckets
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier

log = structlog.get_logger("satgate.mint")


class Issuance:
    def __init__(
        self,
        *,
        keyring: KeyringFile,
        ledger: Ledger,
        store: ControlPlaneStore,
        audit: AuditLog,
        metrics: MintMetrics,
        settings: MintSettings,
        verifier: TokenVerifier,
    ) -> None:
        self.keyring, self.store, self.metrics = keyring, store, metrics
        self._ledger, self._audit, self._settings, self._verifier = ledger, audit, settings, verifier
        self._limits_set = BoundedSet(65536)  # identity buckets whose limit this process knows the ledger holds

    async def issue(self, policy: TrustPolicy, rule: TrustRule, identity: Identity) -> ExchangeResult:
        spec = rule.issue
        ttl = min(parse_duration(spec.ttl), self._settings.max_ttl_seconds)
        if policy.max_ttl:
            ttl = min(ttl, parse_duration(policy.max_ttl))
        expires_at = format_utc(time.time() + ttl)
        caveats: list[tuple[str, str]] = [("expires", expires_at)]
        if spec.scopes:
            caveats.append(("scope", ",".join(spec.scopes)))
        owned = await self._identity_budget(policy, rule, identity)
        if owned is not None:
            caveats.extend(b.caveat for b in owned)
        else:  # budget_per: token — this token's own buckets, as before v2.2
            if spec.budget_credits is not None:
                caveats.append(("budget", str(spec.budget_credits)))
            if spec.budget_window is not None:
                caveats.append(("budget_window", spec.budget_window))
        if spec.max_delegation_depth is not None:
            caveats.append(("max_delegation_depth", str(spec.max_delegation_depth)))
        if spec.label_template and (label := render_label(spec.label_template, identity.claims)):
            caveats.append(("label", label))
        caveats.extend(sorted(spec.caveats.items()))
        minted = mint(self.keyring.current, policy.tenant, caveats, attribute_keys=self._settings.attribute_keys)
        result = ExchangeResult(
            token=minted.token,
            token_id=minted.identifier.token_id,
            tenant=policy.tenant,
            expires_at=expires_at,
            budget_credits=spec.budget_credits,
            caveats=tuple(f"{k} = {v}" for k, v in caveats),
            policy=policy.name,
            budget_window=spec.budget_window,
        )
        if owned is not None:
            by_kind = {b.kind: b.bucket for b in owned}
            bucket_id = by_kind[CREDITS].bucket_id if CREDITS in by_kind else None
            window_bucket_id = by_kind[WINDOW].bucket_id if WINDOW in by_kind else None
            result = replace(result, identity_budget=await self._budget_state(policy.tenant, owned))
        else:
            bucket_id, window_bucket_id = own_buckets(  # for budget changes and the registry's remaining credits
                self._verifier.verify(minted.token).buckets,
                budget=spec.budget_credits is not None,
                window=spec.budget_window is not None,
            )
        await self.store.record_token(
            TokenRecord(
                tenant=policy.tenant,
                token_id=result.token_id,
                issued_at=time.time(),
                source="exchange",
                policy=policy.name,
                subject=identity.subject,
                label=next((v for k, v in caveats if k == "label"), None),
                budget_credits=spec.budget_credits,
                bucket_id=bucket_id,
                scopes=",".join(spec.scopes) or None,
                expires_at=expires_at,
                budget_window=spec.budget_window,
                window_bucket_id=window_bucket_id,
                budget_per=None if owned is None else spec.budget_per,
                budget_rule=None if owned is None else rule_ref(policy, rule),
                budget_period=str(ttl_period(spec.ttl)) if owned is not None and bucket_id else None,
            )
        )
        self.metrics.exchanges.labels(identity.provider, "issued").inc()  # jwt | aws on every Mint metric
        await self._audit.append(
            AuditEvent(
                type="exchange",
                tenant=policy.tenant,
                actor=identity.subject,
                token_id=result.token_id,
                policy=policy.name,
                details={
                    "provider": policy.provider,
                    "rule": rule.name or policy.trust_rules.index(rule),
                    "ttl_seconds": ttl,
                    "budget_credits": spec.budget_credits,
                    "budget_window": spec.budget_window,
                    "budget_per": spec.budget_per if owned is not None else "token",
                    "buckets": [b.bucket.bucket_id for b in owned or ()],
                    "caveats": [f"{k} = {v}" for k, v in caveats if k != "expires"],
                    "expires_at": expires_at,
                },
            )
        )
        log.info("exchange", policy=policy.name, tenant=policy.tenant, token_id=result.token_id, actor=identity.subject)
        return result

    async def _identity_budget(
        self, policy: TrustPolicy, rule: TrustRule, identity: Identity
    ) -> list[IdentityBucket] | None:
        """The rule's budgets for this identity's budget key, their limits in the ledger (set once; a policy change
        moves them: RuleBudgets.apply), or None for `budget_per: token`."""
        try:
            key = budget_key(rule, identity)
        except NoBudgetKey as exc:
            raise ExchangeDenied(403, "no_budget_key", str(exc), policy=policy, identity=identity) from None
        if key is None:
            return None
        owned = rule_buckets(policy, rule, key)
        try:
            for budget in owned:
                if (policy.tenant, budget.bucket.bucket_id) not in self._limits_set:  # a write only when new
                    await self._ledger.set_limit(policy.tenant, budget.bucket, budget.limit, if_unset=True)
                    self._limits_set.add((policy.tenant, budget.bucket.bucket_id))
        except LedgerUnavailable as exc:
            raise ExchangeDenied(503, "unavailable", "ledger unavailable", policy=policy, identity=identity) from exc
        return owned

    async def _budget_state(self, tenant: str, owned: list[IdentityBucket]) -> dict[str, Any] | None:
        """What the identity has left now and when its tightest budget refills (None if the ledger cannot say)."""
        if not owned:
            return None
        now = time.time()
        buckets = [b.bucket for b in owned]
        try:
            lefts = await self._ledger.remaining_each(tenant, tuple(buckets), at=now)
        except LedgerUnavailable:
            return None
        left, bucket, resets_at = tightest(buckets, lefts, now)
        return {"remaining": left, "resets_at": resets_at, "period": str(bucket.period)}
