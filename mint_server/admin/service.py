"""Control-plane operations: server-side delegation (authenticated by the parent token itself) and the admin
API (authenticated by a token of the tenant holding the operation's role, mint_server/admin/roles.py). An admin acts
only on its own tenant."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from mint_server.admin.identity_budgets import IdentityBudgetAdmin
from mint_server.admin.registry import TokenAdmin
from mint_server.admin.roles import OPERATION_ROLES, allows, role_of
from mint_server.audit.refusals import AdminRefusals
from mint_server.exchange.service import ExchangeDenied
from mint_server.policies.files import PolicyStore
from mint_server.policies.managed import Actor, ManagedPolicies
from satgate.audit import AuditEvent, AuditLog, category_of
from satgate.audit.export import exported
from satgate.caveats import Denial, RequestFacts
from satgate.control_plane.store import ControlPlaneStore, DelegationRecord
from satgate.judge import judge
from satgate.ledger import Ledger, LedgerUnavailable
from satgate.revocations import recorded_as
from satgate.routes import RouteSettings
from satgate.timefmt import format_utc, parse_duration
from satgate.tokens.delegate import delegate, own_buckets
from satgate.tokens.verify import TokenRejected, TokenVerifier, VerifiedToken
from satgate.urls import strip_port

_REVOCATION_ID_RE = re.compile(r"[0-9a-f]{32}")
DEFAULT_CHILD_TTL = "1h"


@dataclass(frozen=True)
class Caller:
    """The admin request as a request: the presented token's caveats (methods, cidrs, …) are judged on it."""

    method: str
    path: str
    host: str
    source_ip: str

    @classmethod
    def http(cls, method: str, path: str, host: str | None, remote: str | None) -> Caller:
        """An HTTP request (the API's or the console's): the host as caveats compare it, lower case, no port."""
        return cls(method=method, path=path, host=strip_port((host or "").lower()), source_ip=remote or "")


@dataclass(frozen=True)
class DelegateRequest:
    budget_credits: int | None = None
    scopes: tuple[str, ...] = ()
    ttl: str | None = None
    label: str | None = None
    caveats: dict[str, str] = field(default_factory=dict)
    budget_window: str | None = None

    @classmethod
    def from_json(cls, doc: object) -> DelegateRequest:
        if not isinstance(doc, dict):
            raise ExchangeDenied(400, "bad_request", "body must be a JSON object")
        unknown = set(doc) - {"budget_credits", "budget_window", "scopes", "ttl", "label", "caveats"}
        if unknown:
            raise ExchangeDenied(400, "bad_request", f"unknown field(s): {', '.join(sorted(unknown))}")
        budget, scopes, ttl = doc.get("budget_credits"), doc.get("scopes", []), doc.get("ttl")
        label, caveats, window = doc.get("label"), doc.get("caveats", {}), doc.get("budget_window")
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
            raise ExchangeDenied(400, "bad_request", "budget_credits must be a positive integer")
        if window is not None and not isinstance(window, str):
            raise ExchangeDenied(400, "bad_request", 'budget_window must be a string like "500/1d"')
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ExchangeDenied(400, "bad_request", "scopes must be a list of strings")
        if ttl is not None and not isinstance(ttl, str):
            raise ExchangeDenied(400, "bad_request", "ttl must be a duration like 30m")
        if label is not None and not isinstance(label, str):
            raise ExchangeDenied(400, "bad_request", "label must be a string")
        if not isinstance(caveats, dict) or not all(isinstance(v, str) for v in caveats.values()):
            raise ExchangeDenied(400, "bad_request", "caveats must map keys to strings")
        return cls(budget, tuple(scopes), ttl, label, caveats, window)


class AdminService:
    def __init__(
        self,
        *,
        verifier: TokenVerifier,
        ledger: Ledger,
        audit: AuditLog,
        store: ControlPlaneStore,
        policies: PolicyStore,
        attribute_keys: frozenset[str],
        max_ttl_seconds: int,
        leeway_seconds: float = 30.0,
        refusal_audit_seconds: float = 60.0,
        managed: ManagedPolicies,
        tokens: TokenAdmin,
    ) -> None:
        self.managed = managed
        self.tokens = tokens
        self.identity_budgets = IdentityBudgetAdmin(store=store, ledger=ledger, audit=audit)
        self.refusals = AdminRefusals(audit, interval_seconds=refusal_audit_seconds)
        self._verifier = verifier
        self._ledger = ledger
        self._audit = audit
        self._store = store
        self._policies = policies
        self._attribute_keys = attribute_keys
        self._max_ttl = max_ttl_seconds
        self._leeway = leeway_seconds

    # ------------------------------------------------------------------------------------ authentication
    async def authenticate(self, credential: str | Denial, caller: Caller, *, operation: str | None) -> VerifiedToken:
        """`operation`: the admin operation asked for (its role is checked and the call audited), or None for a
        holder acting with its own token (delegation)."""
        if isinstance(credential, Denial):
            raise ExchangeDenied(401, credential.error, credential.message)
        try:
            token = self._verifier.verify(credential)
        except TokenRejected as exc:
            raise ExchangeDenied(exc.denial.status, exc.denial.error, exc.denial.message) from None
        facts = RequestFacts(
            now=time.time(),
            method=caller.method,
            path=caller.path,
            host=caller.host,
            source_ip=caller.source_ip,
            leeway_seconds=self._leeway,
        )
        denial = judge(token, RouteSettings(), facts)  # expiry, methods, paths, cidrs...: the role is apart
        held = role_of(token) if operation is not None else None
        if denial is None and operation is not None and not allows(held, operation):
            needed = OPERATION_ROLES[operation]
            denial = Denial(
                403,
                "insufficient_scope",
                f"{operation} needs role {needed!r} or higher; this credential holds "
                + (repr(held) if held else "no admin role"),
            )
        if denial is not None:
            if operation is not None:
                await self._audit.append(
                    AuditEvent(
                        type="admin_denied",
                        tenant=token.tenant,
                        actor=token.token_id,
                        details={"reason": denial.error, "path": caller.path, "operation": operation},
                    )
                )
            raise ExchangeDenied(denial.status, denial.error, denial.message)
        try:
            revoked = await self._ledger.is_revoked(token.tenant, token.revocation_ids)
        except LedgerUnavailable:
            raise ExchangeDenied(503, "unavailable", "ledger unavailable") from None
        if revoked:
            raise ExchangeDenied(401, "revoked", "token has been revoked")
        if operation is not None:
            await self._audit.append(
                AuditEvent(
                    type="admin_access",
                    tenant=token.tenant,
                    actor=token.token_id,
                    details={"path": caller.path, "operation": operation, "role": held},
                )
            )
        return token

    # ------------------------------------------------------------------------------------ delegation
    async def delegate(self, parent: VerifiedToken, parent_text: str, request: DelegateRequest) -> dict[str, Any]:
        """A child of `parent`: a fresh delegation id first (before its budget), then tighter limits."""
        now = time.time()
        try:
            delegated = delegate(
                parent_text,
                ttl_seconds=min(parse_duration(request.ttl or DEFAULT_CHILD_TTL), self._max_ttl),
                budget_credits=request.budget_credits,
                budget_window=request.budget_window,
                scopes=request.scopes,
                label=request.label,
                caveats=request.caveats,
                not_after=parent.expires_at,
                attribute_keys=self._attribute_keys,
            )
        except ValueError as exc:
            raise ExchangeDenied(400, "bad_request", str(exc)) from None
        child, delegation_id, expires = delegated.token, delegated.delegation_id, delegated.expires_at
        try:
            verified_child = self._verifier.verify(child)  # depth limits of the parent chain apply to the child
        except TokenRejected as exc:
            raise ExchangeDenied(403, exc.denial.error, exc.denial.message) from None
        parent_step = parent.revocation_ids[-1] if len(parent.revocation_ids) > 1 else None
        # the buckets this delegation added, the last of the child's chain (a budget change targets them)
        bucket_id, window_bucket_id = own_buckets(
            verified_child.buckets, budget=request.budget_credits is not None, window=request.budget_window is not None
        )
        record = DelegationRecord(
            tenant=parent.tenant,
            delegation_id=delegation_id,
            token_id=parent.token_id,
            parent_delegation_id=parent_step,
            created_at=now,
            actor=parent_step or parent.token_id,
            label=request.label,
            budget_credits=request.budget_credits,
            scopes=",".join(request.scopes) or None,
            expires_at=format_utc(expires),
            bucket_id=bucket_id,
            budget_window=request.budget_window,
            window_bucket_id=window_bucket_id,
        )
        await self._store.record_delegation(record)
        await self._audit.append(
            AuditEvent(
                type="delegate",
                tenant=parent.tenant,
                actor=record.actor,
                token_id=parent.token_id,
                details={
                    "delegation_id": delegation_id,
                    "parent_delegation_id": parent_step,
                    "budget_credits": request.budget_credits,
                    "budget_window": request.budget_window,
                    "ttl_seconds": round(expires - now),
                },
            )
        )
        return {
            "token": child,
            "token_id": parent.token_id,
            "delegation_id": delegation_id,
            "parent_delegation_id": parent_step,
            "tenant": parent.tenant,
            "expires_at": record.expires_at,
            "caveats": [f"{k} = {v}" for k, v in delegated.caveats],
        }

    # ------------------------------------------------------------------------------------ admin
    async def revoke(
        self, admin: VerifiedToken, revocation_id: str, reason: str, *, pre_revoke: bool = False
    ) -> dict[str, Any]:
        """A token id or a delegation id of the admin's tenant; everything carrying it is denied from its next
        request on. An id nothing recorded ties to the tenant (a typo, another tenant's) is 404 unless the admin
        asks for a pre-revocation by name."""
        if not _REVOCATION_ID_RE.fullmatch(revocation_id):
            raise ExchangeDenied(400, "bad_request", "id must be a token_id or delegation_id (32 lowercase hex)")
        records = (record for _seq, record, _prev, _hash in await self._audit.records())
        recorded = await recorded_as(admin.tenant, revocation_id, records, self._store)
        if recorded is None and not pre_revoke:
            raise ExchangeDenied(
                404,
                "not_found",
                f"nothing recorded in tenant {admin.tenant!r} carries id {revocation_id}; check the id, or send "
                '"pre_revoke": true to revoke it before its token exists',
            )
        try:
            fresh = await self._ledger.revoke(admin.tenant, revocation_id, reason)
        except LedgerUnavailable:
            raise ExchangeDenied(503, "unavailable", "ledger unavailable") from None
        known = await self._store.subtree(admin.tenant, revocation_id) or await self._store.delegations(
            admin.tenant, revocation_id
        )
        await self._audit.append(
            AuditEvent(
                type="revoke",
                tenant=admin.tenant,
                actor=admin.token_id,
                token_id=revocation_id,
                details={"reason": reason[:200], "known_delegations": len(known), "recorded_as": recorded},
            )
        )
        return {
            "revoked": revocation_id,
            "tenant": admin.tenant,
            "recorded_as": recorded,
            "already_revoked": not fresh,
            "known_delegations": [r.delegation_id for r in known],
        }

    async def delegations(self, admin: VerifiedToken, *, token_id: str | None, delegation_id: str | None) -> list[dict]:
        if token_id:
            records = await self._store.delegations(admin.tenant, token_id)
        elif delegation_id:
            records = await self._store.subtree(admin.tenant, delegation_id)
        else:
            raise ExchangeDenied(400, "bad_request", "give token_id or delegation_id")
        return [r.to_json() for r in records]

    async def audit_records(
        self,
        admin: VerifiedToken,
        *,
        since: str | None = None,
        event_type: str | None = None,
        category: str | None = None,
        chain: list[tuple[Any, dict[str, Any], str, str]] | None = None,
    ) -> list[dict[str, Any]]:
        """The tenant's records, in chain order, each with its prev_hash and hash: every record verifies on its own
        (`satgate audit verify --file F --partial`); that none is missing shows only on the whole chain. Filters:
        `since` a duration back from now (e.g. 7d), one event type, one category. `chain`: the records already
        read (by a caller that verified them), so the store is not read twice."""
        try:
            after = format_utc(time.time() - parse_duration(since)) if since else ""
        except ValueError as exc:
            raise ExchangeDenied(400, "bad_request", f"since: {exc}") from None
        return [
            exported(seq, record, prev, digest)
            for seq, record, prev, digest in (chain if chain is not None else await self._audit.records())
            if record.get("tenant") == admin.tenant
            and str(record.get("time", "")) >= after
            and (event_type is None or record.get("type") == event_type)
            and (category is None or category_of(str(record.get("type"))) == category)
        ]

    async def revoke_policy(
        self, admin: VerifiedToken, name: str, reason: str, *, revoke_tokens: bool = False
    ) -> dict[str, Any]:
        """Stops issuance at once, for good (SPEC v2.2: policy state); the policy stays listed as revoked. An API
        policy's name is free again for a new policy. `revoke_tokens`: every token issued under it is revoked too
        (their delegations with them)."""
        await self.managed.refresh()  # an API-managed policy another replica just created is revocable too
        fresh = await self.managed.revoke(Actor(admin.tenant, admin.token_id), name)
        source = "api"
        if fresh is None:  # not an API policy of this tenant: a file policy of it, or nothing it may know of
            known = any(p.tenant == admin.tenant and p.name == name for p in self._policies.current.policies)
            if not known:
                raise ExchangeDenied(404, "not_found", f"no policy {name!r} in tenant {admin.tenant!r}")
            fresh, source = await self._store.revoke_policy(admin.tenant, name, reason[:200]), "file"
        revoked_tokens = await self._revoke_tokens_of(admin.tenant, name, reason) if revoke_tokens else 0
        await self._audit.append(
            AuditEvent(
                type="policy_revoked",
                tenant=admin.tenant,
                actor=admin.token_id,
                policy=name,
                details={"reason": reason[:200], "source": source, "tokens_revoked": revoked_tokens},
            )
        )
        return {"policy": name, "revoked": True, "already_revoked": not fresh, "tokens_revoked": revoked_tokens}

    async def _revoke_tokens_of(self, tenant: str, policy: str, reason: str) -> int:
        """Every token the registry holds for the policy, page by page; a token's delegations go with it."""
        count, before = 0, None
        while True:
            page = await self._store.tokens(tenant, policy=policy, before=before, limit=1000)
            for record in page:
                try:
                    count += await self._ledger.revoke(tenant, record.token_id, f"policy {policy} revoked: {reason}")
                except LedgerUnavailable:
                    raise ExchangeDenied(
                        503,
                        "unavailable",
                        f"policy {policy!r} is revoked; {count} of its tokens were revoked before "
                        "the ledger stopped answering: revoke it again with revoke_tokens to finish",
                    ) from None
            if len(page) < 1000:
                return count
            before = math.nextafter(page[-1].issued_at, math.inf)  # ties at the boundary again: revoking is idempotent
