"""Trust policies managed through the admin API (SPEC: Control plane): validated exactly as files are, each
change a new version in the control plane (so every Mint replica sharing it follows at its next exchange), audited
`policy_change`. A policy from a file is listed but read-only here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from mint_server.policies.files import PolicyStore, per_token_budgets, validate_policy
from mint_server.policies.models import PolicyError, TrustPolicy
from mint_server.policies.tenants import IssuerDirectory
from satgate.audit import AuditEvent, AuditLog
from satgate.control_plane.policy_versions import ENDED, PolicyConflict, PolicyVersion, PolicyVersions
from satgate.control_plane.store import ControlPlaneStore
from satgate.ledger import LedgerUnavailable

log = structlog.get_logger("satgate.mint")


class BudgetChanges(Protocol):
    """Carries a policy's budget change to the identity budgets that exist (the exchange's RuleBudgets)."""

    async def apply(self, before: TrustPolicy | None, after: TrustPolicy, actor: str | None) -> int: ...


class PolicyRefused(Exception):
    """An API change the rules refuse: `status` 400 (invalid), 403 (file policy), 404 (none), 409 (conflict)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@dataclass(frozen=True)
class Actor:
    tenant: str
    token_id: str


def _shown(policy: TrustPolicy, source: str, version: int | None, state: str | None = None) -> dict[str, Any]:
    return {
        "name": policy.name,
        "tenant": policy.tenant,
        "provider": policy.provider,
        "state": state or ("disabled" if policy.disabled else "enabled"),
        "disabled": policy.disabled or state == "revoked",
        "source": source,
        "read_only": source == "file",
        "version": version,
        "document": policy.model_dump(mode="json", exclude_none=True),
    }


class ManagedPolicies:
    def __init__(
        self,
        store: ControlPlaneStore,
        policies: PolicyStore,
        audit: AuditLog,
        attribute_keys: frozenset[str],
        *,
        require_scopes: bool = False,
    ) -> None:
        self._store = store
        self._versions: PolicyVersions = store.policies
        self._policies = policies
        self._audit = audit
        self._attribute_keys = attribute_keys
        self._require_scopes = require_scopes
        self._generation = -1
        self._latest: dict[tuple[str, str], PolicyVersion] = {}  # (tenant, name): live and revoked API policies
        self.budgets: BudgetChanges | None = None  # carries a budget change to existing identity budgets

    @property
    def attribute_keys(self) -> frozenset[str]:
        """The declared attribute caveat keys (attributes.keys) that policies may issue."""
        return self._attribute_keys

    async def refresh(self) -> None:
        """Follow changes any replica made: one small query, and a reload only when the generation moved."""
        generation = await self._versions.generation()
        if generation == self._generation:
            return
        current = await self._versions.current(revoked=True)
        managed = []
        for version in current:
            try:
                policy = TrustPolicy.model_validate(version.document)
                # A revoked policy never issues, yet still matches its identities (403, not "untrusted issuer")
                # and keeps its issuer from being taken over by another tenant.
                managed.append(policy.model_copy(update={"disabled": True}) if version.action == "revoke" else policy)
            except ValueError as exc:  # validated when written; a newer SatGate's field, say: keep the others
                log.error("managed_policy_invalid", policy=version.name, detail=str(exc).splitlines()[0])
        self._policies.use_managed(managed)
        self._latest = {(v.tenant, v.name): v for v in current}
        self._generation = generation

    # ------------------------------------------------------------------ reads
    async def list_policies(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's policies with their state: enabled, disabled, or revoked (kept in sight, never issuing)."""
        await self.refresh()
        files = self._policies.file_policy_keys
        revoked_files = await self._store.revoked_policies(tenant)
        shown = []
        for p in self._policies.current.policies:
            if p.tenant != tenant:
                continue
            if (p.tenant, p.name) in files:
                shown.append(_shown(p, "file", None, state="revoked" if p.name in revoked_files else None))
            else:
                latest = self._latest[(p.tenant, p.name)]
                shown.append(_shown(p, "api", latest.version, "revoked" if latest.action == "revoke" else None))
        return shown

    async def get(self, tenant: str, name: str) -> dict[str, Any]:
        found = next((p for p in await self.list_policies(tenant) if p["name"] == name), None)
        if found is None:
            raise PolicyRefused(404, "not_found", f"no policy {name!r} in tenant {tenant!r}")
        return found

    async def history(self, tenant: str, name: str) -> list[dict[str, Any]]:
        versions = await self._versions.history(tenant, name)
        if not versions:
            raise PolicyRefused(404, "not_found", f"no API-managed policy {name!r} in tenant {tenant!r}")
        return [v.to_json() for v in versions]

    # ------------------------------------------------------------------ changes
    def _validated(self, actor: Actor, document: object) -> TrustPolicy:
        try:
            return validate_policy(
                document, self._attribute_keys, tenant=actor.tenant, require_scopes=self._require_scopes
            )
        except PolicyError as exc:
            raise PolicyRefused(400, "invalid_policy", str(exc)) from None

    def _refuse_overlap(self, policy: TrustPolicy) -> None:
        """A tenant's policy may never trust another tenant's identities (SPEC v2.2): 409, naming nobody."""
        others = [p for p in self._policies.current.policies if (p.tenant, p.name) != (policy.tenant, policy.name)]
        reason = IssuerDirectory(others, self._policies.shared_issuers).overlap(policy)
        if reason is not None:
            raise PolicyRefused(409, "overlap", f"this policy would trust another tenant's identities: {reason}")

    def _writable(self, tenant: str, name: str) -> None:
        if (tenant, name) in self._policies.file_policy_keys:
            raise PolicyRefused(
                403, "read_only", f"policy {name!r} comes from a policy file: change the file (it is read-only here)"
            )

    async def _owned(self, actor: Actor, name: str) -> PolicyVersion:
        self._writable(actor.tenant, name)
        latest = await self._versions.latest(actor.tenant, name)
        if latest is not None and latest.action == "revoke":
            raise PolicyRefused(
                409,
                "revoked",
                f"policy {name!r} is revoked, for good: it cannot be enabled or changed. Create a new policy (the "
                "name is free again) if its identities should exchange once more",
            )
        if latest is None or latest.action == "delete":
            raise PolicyRefused(404, "not_found", f"no API-managed policy {name!r} in tenant {actor.tenant!r}")
        return latest

    async def _write(
        self, actor: Actor, policy_name: str, action: str, document: dict[str, Any] | None, expected: int
    ) -> dict[str, Any]:
        try:
            version = await self._versions.write(
                name=policy_name,
                tenant=actor.tenant,
                action=action,
                document=document,
                actor=actor.token_id,
                expected_version=expected,
            )
        except PolicyConflict as exc:
            raise PolicyRefused(409, "conflict", f"{exc}; read it again and retry") from None
        await self._audit.append(
            AuditEvent(
                type="policy_change",
                tenant=actor.tenant,
                actor=actor.token_id,
                policy=policy_name,
                details={"action": action, "version": version.version, "source": "api"},
            )
        )
        await self.refresh()
        return version.to_json()

    async def create(self, actor: Actor, document: object) -> dict[str, Any]:
        policy = self._validated(actor, document)
        self._writable(actor.tenant, policy.name)
        await self.refresh()  # another replica's newest policies count too
        self._refuse_overlap(policy)
        latest = await self._versions.latest(actor.tenant, policy.name)  # names are per tenant
        if latest is not None and latest.action not in ENDED:
            raise PolicyRefused(409, "conflict", f"policy {policy.name!r} exists; update it instead")
        for warning in per_token_budgets([policy]):
            log.warning("policy_budget_per_token", detail=warning, tenant=actor.tenant)
        dumped = policy.model_dump(mode="json", exclude_none=True)
        return await self._write(actor, policy.name, "create", dumped, latest.version if latest else 0)

    async def update(self, actor: Actor, name: str, document: object, expected_version: int | None) -> dict[str, Any]:
        latest = await self._owned(actor, name)
        if expected_version is not None and expected_version != latest.version:
            raise PolicyRefused(
                409, "conflict", f"policy {name!r} is at version {latest.version}, not {expected_version}"
            )
        if isinstance(document, dict):
            document = {**document, "name": document.get("name", name)}
        policy = self._validated(actor, document)
        if policy.name != name:
            raise PolicyRefused(400, "invalid_policy", f"name: a policy keeps its name ({name!r}); create a new one")
        await self.refresh()
        self._refuse_overlap(policy)
        dumped = policy.model_dump(mode="json", exclude_none=True)
        written = await self._write(actor, name, "update", dumped, latest.version)
        if self.budgets is not None and latest.document is not None:
            before = TrustPolicy.model_validate(latest.document)
            try:
                await self.budgets.apply(before, policy, actor.token_id)  # audited when it moved any
            except LedgerUnavailable:
                raise PolicyRefused(
                    503,
                    "unavailable",
                    f"policy {name!r} is saved (version {written['version']}), but the ledger could not take its "
                    "new budgets for the identities that have one: retry when the ledger is back",
                ) from None
        return written

    async def set_enabled(self, actor: Actor, name: str, enabled: bool) -> dict[str, Any]:
        latest = await self._owned(actor, name)
        assert latest.document is not None
        document = {**latest.document, "disabled": not enabled}
        return await self._write(actor, name, "enable" if enabled else "disable", document, latest.version)

    async def delete(self, actor: Actor, name: str) -> dict[str, Any]:
        latest = await self._owned(actor, name)
        return await self._write(actor, name, "delete", None, latest.version)

    async def revoke(self, actor: Actor, name: str) -> bool | None:
        """Revoke an API policy: a `revoke` version keeping its document (listed as revoked, issuing nothing; its
        name free again). True when revoked now, False when it was already, None when it is not an API policy."""
        if (actor.tenant, name) in self._policies.file_policy_keys:
            return None
        latest = await self._versions.latest(actor.tenant, name)
        if latest is None or latest.action == "delete":
            return None
        if latest.action == "revoke":
            return False
        await self._write(actor, name, "revoke", latest.document, latest.version)
        return True
