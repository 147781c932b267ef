"""Trust policies managed through the admin API (SPEC: Control plane): validated exactly as files are, each
change a new version in the control plane (so every Mint replica sharing it follows at its next exchange), audited
`policy_change`. A policy from a file is listed but read-only here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from mint_server.identity_budgets import RuleBudgets
from mint_server.issuers import IssuerDirectory
from mint_server.policies import PolicyError, TrustPolicy
from mint_server.policy_files import PolicyStore, per_token_budgets, validate_policy
from satgate.audit import AuditEvent, AuditLog
from satgate.control_plane.policy_versions import PolicyConflict, PolicyVersion, PolicyVersions
from satgate.ledger import LedgerUnavailable

log = structlog.get_logger("satgate.mint")


class PolicyRefused(Exception):
    """An API change the rules refuse: `status` 400 (invalid), 403 (file policy), 404 (none), 409 (conflict)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@dataclass(frozen=True)
class Actor:
    tenant: str
    token_id: str


def _shown(policy: TrustPolicy, source: str, version: int | None) -> dict[str, Any]:
    return {
        "name": policy.name,
        "tenant": policy.tenant,
        "provider": policy.provider,
        "disabled": policy.disabled,
        "source": source,
        "read_only": source == "file",
        "version": version,
        "document": policy.model_dump(mode="json", exclude_none=True),
    }


class ManagedPolicies:
    def __init__(
        self,
        versions: PolicyVersions,
        policies: PolicyStore,
        audit: AuditLog,
        attribute_keys: frozenset[str],
        *,
        require_scopes: bool = False,
    ) -> None:
        self._versions = versions
        self._policies = policies
        self._audit = audit
        self._attribute_keys = attribute_keys
        self._require_scopes = require_scopes
        self._generation = -1
        self._latest: dict[str, PolicyVersion] = {}
        self.budgets: RuleBudgets | None = None  # carries a budget change to existing identity budgets

    @property
    def attribute_keys(self) -> frozenset[str]:
        """The declared attribute caveat keys (attributes.keys) that policies may issue."""
        return self._attribute_keys

    async def refresh(self) -> None:
        """Follow changes any replica made: one small query, and a reload only when the generation moved."""
        generation = await self._versions.generation()
        if generation == self._generation:
            return
        current = await self._versions.current()
        managed = []
        for version in current:
            try:
                managed.append(TrustPolicy.model_validate(version.document))
            except ValueError as exc:  # validated when written; a newer SatGate's field, say: keep the others
                log.error("managed_policy_invalid", policy=version.name, detail=str(exc).splitlines()[0])
        self._policies.use_managed(managed)
        self._latest = {v.name: v for v in current}
        self._generation = generation

    # ------------------------------------------------------------------ reads
    async def list_policies(self, tenant: str) -> list[dict[str, Any]]:
        await self.refresh()
        files = self._policies.file_policy_names
        return [
            _shown(p, "file" if p.name in files else "api", None if p.name in files else self._latest[p.name].version)
            for p in self._policies.current.policies
            if p.tenant == tenant
        ]

    async def get(self, tenant: str, name: str) -> dict[str, Any]:
        found = next((p for p in await self.list_policies(tenant) if p["name"] == name), None)
        if found is None:
            raise PolicyRefused(404, "not_found", f"no policy {name!r} in tenant {tenant!r}")
        return found

    async def history(self, tenant: str, name: str) -> list[dict[str, Any]]:
        versions = [v for v in await self._versions.history(name) if v.tenant == tenant]
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

    def _writable(self, name: str) -> None:
        if name in self._policies.file_policy_names:
            raise PolicyRefused(
                403, "read_only", f"policy {name!r} comes from a policy file: change the file (it is read-only here)"
            )

    async def _owned(self, actor: Actor, name: str) -> PolicyVersion:
        self._writable(name)
        latest = await self._versions.latest(name)
        if latest is None or latest.tenant != actor.tenant or latest.action == "delete":
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
        self._writable(policy.name)
        await self.refresh()  # another replica's newest policies count too
        self._refuse_overlap(policy)
        latest = await self._versions.latest(policy.name)
        if latest is not None and latest.action != "delete":
            where = "your tenant" if latest.tenant == actor.tenant else "another tenant"
            raise PolicyRefused(409, "conflict", f"policy {policy.name!r} exists in {where}; update it instead")
        if latest is not None and latest.tenant != actor.tenant:
            raise PolicyRefused(409, "conflict", f"policy name {policy.name!r} belongs to another tenant")
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
