"""The Mint's operations, shared by the HTTP and gRPC front ends: exchange an identity, verify a token."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime

import aiohttp
import structlog

from mint_server.audit.refusals import UnauthenticatedRefusals
from mint_server.exchange.identity_budgets import RuleBudgets, tightest
from mint_server.exchange.issuance import Issuance
from mint_server.exchange.rate_limit import RateLimiter, workload_instance
from mint_server.exchange.results import ExchangeDenied, ExchangeResult, MintSettings, VerifyResult
from mint_server.identity import aws, oidc
from mint_server.identity.base import BadRequest, IdentityError
from mint_server.metrics import MintMetrics
from mint_server.policies.files import PolicyStore
from mint_server.policies.managed import ManagedPolicies
from mint_server.policies.models import (
    Identity,
    TrustPolicy,
    rule_matches,
)
from mint_server.tracing import exchange_span
from satgate.audit import AuditEvent, AuditLog
from satgate.control_plane.store import ControlPlaneStore
from satgate.keyring import KeyringFile
from satgate.ledger import Ledger, LedgerUnavailable
from satgate.tokens.verify import TokenRejected, TokenVerifier
from satgate.tracing import Tracing

log = structlog.get_logger("satgate.mint")


def _shown(text: str) -> str:
    """A value from an unverified token, safe to put in a message: printable, bounded, quoted."""
    return repr("".join(c if c.isprintable() else "?" for c in text[:200]))


class MintService:
    def __init__(
        self,
        *,
        keyring: KeyringFile,
        ledger: Ledger,
        audit: AuditLog,
        policies: PolicyStore,
        session: aiohttp.ClientSession,
        settings: MintSettings,
        rate_limiter: RateLimiter,
        store: ControlPlaneStore,
        jwks_refetch_seconds: float = oidc.REFETCH_INTERVAL_SECONDS,
        refusal_audit_seconds: float = 60.0,
        tenants: frozenset[str] | None = None,
        managed: ManagedPolicies | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.tracing = tracing
        self.store = store
        self.managed = managed
        self.audit = audit
        self.refusals = UnauthenticatedRefusals(audit, interval_seconds=refusal_audit_seconds)
        self.metrics = MintMetrics()
        self.keyring = keyring
        self._ledger = ledger
        self._audit = audit
        self.policies = policies
        self._session = session
        self._settings = settings
        self._rate = rate_limiter
        self._verifier = TokenVerifier(keyring.current, attribute_keys=settings.attribute_keys, tenants=tenants)
        self.budgets = RuleBudgets(ledger, store, audit)
        self._issuance = Issuance(
            keyring=keyring,
            ledger=ledger,
            store=store,
            audit=audit,
            metrics=self.metrics,
            settings=settings,
            verifier=self._verifier,
        )
        keyring.on_change(self._verifier.use_keyring)
        self._jwks = oidc.JwksCache(
            session,
            refetch_interval=jwks_refetch_seconds,
            on_fetch=lambda _issuer, ok: self.metrics.jwks_fetches.labels("ok" if ok else "error").inc(),
        )

    # ------------------------------------------------------------------------------------ exchange
    async def exchange_jwt(
        self, credentials: str, *, source: str = "", trace_headers: Mapping[str, str] | None = None
    ) -> ExchangeResult:
        """`trace_headers`: the request's, whose W3C `traceparent` parents the exchange's span."""
        with self.metrics.latency.labels("jwt").time(), exchange_span(self.tracing, "jwt", trace_headers) as span:
            return span.done(await self._audited("jwt", self._exchange_jwt(credentials), source))

    async def exchange_aws(
        self,
        iam_request: aws.IamRequest | object,
        *,
        source: str = "",
        trace_headers: Mapping[str, str] | None = None,
    ) -> ExchangeResult:
        """`iam_request` as parsed by a front end, or the JSON the HTTP API received (parsed, and refused, here)."""
        with self.metrics.latency.labels("aws").time(), exchange_span(self.tracing, "aws", trace_headers) as span:
            return span.done(await self._audited("aws", self._exchange_aws(iam_request), source))

    async def _exchange_jwt(self, credentials: str) -> ExchangeResult:
        if self.managed is not None:
            await self.managed.refresh()  # a policy changed through any replica applies to this exchange
        try:
            identity, candidates = await self._verify_jwt(credentials)
        except IdentityError as exc:
            raise ExchangeDenied(401, "invalid_identity", exc.reason) from None
        return await self._issue_for(identity, candidates)

    async def _exchange_aws(self, iam_request: aws.IamRequest | object) -> ExchangeResult:
        settings = self._settings.aws
        if settings is None:
            raise ExchangeDenied(403, "provider_disabled", "AWS exchange is not configured on this Mint")
        try:
            if not isinstance(iam_request, aws.IamRequest):
                iam_request = aws.IamRequest.from_json(iam_request)
            fresh_until = aws.check_request(iam_request, settings, datetime.now(UTC))
            # Before STS is asked, so two copies racing cannot both pass; a request STS refuses is spent too.
            if not await self.store.first_use(aws.signature_digest(iam_request), fresh_until):
                raise ExchangeDenied(401, "replayed", "this signed request was already exchanged; sign a new one")
            identity = await aws.get_caller_identity(self._session, iam_request, settings)
        except BadRequest as exc:
            raise ExchangeDenied(400, "bad_request", str(exc)) from None
        except IdentityError as exc:
            raise ExchangeDenied(401, "invalid_identity", exc.reason) from None
        except aws.StsUnavailable as exc:
            log.error("sts_unavailable", detail=str(exc))
            raise ExchangeDenied(503, "unavailable", "AWS STS could not be reached") from None
        if self.managed is not None:
            await self.managed.refresh()
        # Only the policies of the tenant that owns the caller's account (SPEC v2.2: Tenants and issuers)
        candidates = self.policies.directory.aws_candidates(str(identity.claims.get("account", "")))
        return await self._issue_for(identity, candidates)

    async def _audited(self, provider: str, exchange: Awaitable[ExchangeResult], source: str) -> ExchangeResult:
        """Every refusal is counted and lands in the audit log, with whatever was known when it happened; those
        before any identity verified are aggregated per source and interval (anyone can send them)."""
        try:
            return await exchange
        except ExchangeDenied as denied:
            policy, identity = denied.policy, denied.identity
            kind = policy.provider if policy else provider
            self.metrics.exchanges.labels(provider, denied.error).inc()  # the credential kind, as when issued
            if identity is None and policy is None:
                self.refusals.record(source, kind, denied.error, denied.status)
                raise
            await self._audit.append(
                AuditEvent(
                    type="exchange_denied",
                    tenant=policy.tenant if policy else None,
                    actor=identity.subject if identity else None,
                    policy=policy.name if policy else None,
                    details={"provider": kind, "reason": denied.error, "status": denied.status},
                )
            )
            log.info(
                "exchange_denied", reason=denied.error, status=denied.status, policy=policy.name if policy else None
            )
            raise

    async def _verify_jwt(self, credentials: str) -> tuple[Identity, list[TrustPolicy]]:
        peeked = oidc.peek(credentials)
        # The key source and the policies are the issuer's owning tenant's (or, on an issuer the platform admin
        # shares, those of the tenant whose assigned claims the identity carries): never chosen across tenants.
        route = self.policies.directory.jwt_route(peeked.issuer)
        if route is None:
            raise IdentityError(
                f"JWT issuer {_shown(peeked.issuer)} is not trusted by any policy (a policy's issuer must match "
                "exactly: http://localhost:8090 and http://127.0.0.1:8090 are different issuers)"
            )
        key = await self._jwks.key_for(peeked.issuer, route.jwks_uri, peeked.header.get("kid"), route.fetch)
        claims = oidc.verify(credentials, key, peeked, route.audiences)
        subject = str(claims.get("sub", ""))
        once, until = oidc.replay_key(credentials, peeked.issuer, claims)
        identity = Identity("jwt", subject, claims, peeked.issuer, replay_key=once, replay_until=until)
        token_audiences = {claims["aud"]} if isinstance(claims["aud"], str) else set(claims["aud"])
        accepting = [p for p in route.candidates(identity) if token_audiences & set(p.audiences)]
        return identity, accepting

    async def _issue_for(self, identity: Identity, candidates: list[TrustPolicy]) -> ExchangeResult:
        disabled_match: TrustPolicy | None = None
        for policy in candidates:
            rule = next((r for r in policy.trust_rules if rule_matches(r, identity)), None)
            if rule is None:
                continue
            if policy.disabled or await self.store.is_policy_revoked(policy.tenant, policy.name):
                disabled_match = disabled_match or policy
                continue
            if wait := self._rate.wait((f"{policy.tenant}/{policy.name}", workload_instance(identity))):
                retry_after = max(1, math.ceil(wait))
                raise ExchangeDenied(
                    429,
                    "rate_limited",
                    f"too many exchanges for this workload; retry in {retry_after} s",
                    policy=policy,
                    identity=identity,
                    retry_after=retry_after,
                )
            # After the rate limit (which shields the store), before issuing: atomic across replicas
            if (
                policy.jwt_reuse == "once"
                and identity.replay_key is not None
                and not await self.store.first_use(identity.replay_key, identity.replay_until)
            ):
                raise ExchangeDenied(
                    401,
                    "replayed",
                    f"this identity token was already exchanged (policy {policy.name!r} allows each JWT once);"
                    " present a fresh one",
                    policy=policy,
                    identity=identity,
                )
            return await self._issuance.issue(policy, rule, identity)
        if disabled_match is not None:
            raise ExchangeDenied(
                403,
                "policy_disabled",
                "the matching policy is disabled or revoked",
                policy=disabled_match,
                identity=identity,
            )
        raise ExchangeDenied(403, "no_matching_rule", "no trust rule matches this identity", identity=identity)

    async def verify(self, token_text: str) -> VerifyResult:
        try:
            token = self._verifier.verify(token_text)
        except TokenRejected as exc:
            return VerifyResult(valid=False, error=exc.denial.error)
        now = time.time()
        try:
            revoked = await self._ledger.is_revoked(token.tenant, token.revocation_ids)
            lefts = await self._ledger.remaining_each(token.tenant, token.buckets, at=now)
        except LedgerUnavailable as exc:
            raise ExchangeDenied(503, "unavailable", "ledger unavailable") from exc
        if revoked:
            return VerifyResult(valid=False, error="revoked")
        if token.expires_at is not None and token.expires_at <= now:
            return VerifyResult(valid=False, error="expired")
        if not lefts:
            return VerifyResult(True, token.token_id, token.tenant, token.caveat_texts, None)
        remaining, _, resets_at = tightest(token.buckets, lefts, now)  # a windowed budget refills when its window ends
        return VerifyResult(True, token.token_id, token.tenant, token.caveat_texts, remaining, resets_at=resets_at)

    # ------------------------------------------------------------------------------------ lifecycle
    async def watch_policies(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            before = {(p.tenant, p.name): p for p in self.policies.current.policies}
            if self.policies.reload_if_changed():
                await self._carry_budget_changes(before)
                await self._audit_reload(before)

    async def _audit_reload(self, before: Mapping[tuple[str, str], TrustPolicy]) -> None:
        """A policy file reload, recorded under each tenant it changed (its export and console show it), naming
        the policies added, changed and removed."""
        after = {(p.tenant, p.name): p for p in self.policies.current.policies}
        changes: dict[str, dict[str, list[str]]] = {}
        for key in sorted(before.keys() | after.keys()):
            old, new = before.get(key), after.get(key)
            kind = "added" if old is None else "removed" if new is None else "changed" if old != new else None
            if kind is not None:
                changes.setdefault(key[0], {"added": [], "changed": [], "removed": []})[kind].append(key[1])
        log.info("policies_reloaded", tenants=sorted(changes))
        for tenant, changed in changes.items():
            disabled = sorted(name for (owner, name), p in after.items() if owner == tenant and p.disabled)
            details = {"source": "file", "action": "reload", **changed, "disabled": disabled}
            await self._audit.append(AuditEvent(type="policy_change", tenant=tenant, details=details))

    async def _carry_budget_changes(self, before: Mapping[tuple[str, str], TrustPolicy]) -> None:
        """A policy file's budget change reaches the identity budgets that exist (logged when the ledger is down:
        they keep their limit until the next change)."""
        for policy in self.policies.current.policies:
            old = before.get((policy.tenant, policy.name))
            if old is None:
                continue
            try:
                await self.budgets.apply(old, policy, None)
            except LedgerUnavailable as exc:
                log.error("policy_budgets_not_applied", policy=policy.name, tenant=policy.tenant, detail=str(exc))

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # the last interval's refusals, if the audit store takes them
            await self.refusals.flush()
        await self._ledger.close()
        await self._audit.close()
        await self.store.close()
        if self.tracing is not None:
            self.tracing.close()
