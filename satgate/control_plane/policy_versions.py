"""Trust policies managed by API (SPEC: Control plane): every change is a new version of the policy, so the
history is the table itself; the current set is each name's newest version that is not a deletion. Two writers of
the same version (two replicas, two admins) cannot both win: the second gets PolicyConflict."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from satgate.control_plane.schema import policy_versions

ACTIONS = frozenset({"create", "update", "disable", "enable", "delete", "revoke"})
ENDED = ("delete", "revoke")  # the policy is gone (a revoked one stays listed, as revoked); its name is free again


class PolicyConflict(Exception):
    """The policy changed since the version the writer read (or it exists already / no longer)."""


@dataclass(frozen=True)
class PolicyVersion:
    name: str
    version: int
    tenant: str
    action: str
    document: dict[str, Any] | None  # None: deleted at this version
    created_at: float
    actor: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "tenant": self.tenant,
            "action": self.action,
            "document": self.document,
            "created_at": self.created_at,
            "actor": self.actor,
        }


def _version(row: Any) -> PolicyVersion:
    mapping = dict(row._mapping)
    mapping.pop("seq", None)
    return PolicyVersion(**mapping)


class PolicyVersions:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def generation(self) -> int:
        """Grows with every change by any replica: a Mint reloads its API policies when it moved."""
        async with self._engine.connect() as db:
            return int(await db.scalar(select(func.coalesce(func.max(policy_versions.c.seq), 0))) or 0)

    async def latest(self, tenant: str, name: str) -> PolicyVersion | None:
        query = select(policy_versions).where(policy_versions.c.tenant == tenant, policy_versions.c.name == name)
        query = query.order_by(policy_versions.c.version.desc()).limit(1)
        async with self._engine.connect() as db:
            row = (await db.execute(query)).first()
        return _version(row) if row else None

    async def current(self, *, revoked: bool = False) -> list[PolicyVersion]:
        """Each live policy's newest version, in the order the policies were first created (order matters);
        with `revoked`, the revoked ones too (listed as such)."""
        v = policy_versions.c
        newest = select(v.tenant, v.name, func.max(v.version).label("version")).group_by(v.tenant, v.name).subquery()
        first = select(v.tenant, v.name, func.min(v.seq).label("first_seq")).group_by(v.tenant, v.name).subquery()
        ended = ["delete"] if revoked else list(ENDED)
        query = (
            select(policy_versions)
            .join(newest, (newest.c.tenant == v.tenant) & (newest.c.name == v.name) & (newest.c.version == v.version))
            .join(first, (first.c.tenant == v.tenant) & (first.c.name == v.name))
            .where(v.action.not_in(ended))
            .order_by(first.c.first_seq)
        )
        async with self._engine.connect() as db:
            return [_version(row) for row in await db.execute(query)]

    async def history(self, tenant: str, name: str) -> list[PolicyVersion]:
        v = policy_versions.c
        query = select(policy_versions).where(v.tenant == tenant, v.name == name).order_by(v.version)
        async with self._engine.connect() as db:
            return [_version(row) for row in await db.execute(query)]

    async def write(
        self,
        *,
        name: str,
        tenant: str,
        action: str,
        document: dict[str, Any] | None,
        actor: str,
        expected_version: int,
    ) -> PolicyVersion:
        """Version `expected_version + 1` (0 for a new policy), or PolicyConflict if someone wrote it first."""
        assert action in ACTIONS
        version = PolicyVersion(name, expected_version + 1, tenant, action, document, time.time(), actor)
        values = version.to_json()
        try:
            async with self._engine.begin() as db:
                await db.execute(policy_versions.insert().values(**values))
        except IntegrityError:
            raise PolicyConflict(f"policy {name!r} changed since version {expected_version}") from None
        return version
