"""The control-plane store: state Mint replicas share (the delegation tree, revoked policies, one-time
credentials), on SQLite (one host) or PostgreSQL (several), the same statements for both."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from satgate.control_plane.engine import create_engine, failure_reason
from satgate.control_plane.migrate import check_schema, current_revision, upgrade
from satgate.control_plane.schema import delegations, revoked_policies, used_signatures
from satgate.control_plane.url import ControlPlaneError, redacted, sqlite_file


class ControlPlaneUnavailable(ControlPlaneError):
    pass


@dataclass(frozen=True)
class DelegationRecord:
    tenant: str
    delegation_id: str
    token_id: str  # the root token every descendant shares
    parent_delegation_id: str | None  # None: the parent is the root token
    created_at: float
    actor: str  # who asked: the parent's token id and delegation step
    label: str | None
    budget_credits: int | None
    scopes: str | None
    expires_at: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def open_engine(url: str, *, upgrade_embedded: bool = True) -> AsyncEngine:
    """An engine on a database at this SatGate's schema, or SchemaOutOfDate / ControlPlaneUnavailable (one line
    each). An embedded SQLite file (one host, nobody else to coordinate with) is brought up to date here unless
    `upgrade_embedded` is false; a shared PostgreSQL only by `satgate db upgrade`."""
    engine = create_engine(url)
    try:
        if upgrade_embedded and sqlite_file(url) is not None:
            await upgrade(engine)
        else:
            await check_schema(engine, redacted(url))
    except (OSError, SQLAlchemyError) as exc:
        await engine.dispose()
        raise ControlPlaneUnavailable(f"control_plane: cannot use {redacted(url)} ({failure_reason(exc)})") from None
    except BaseException:
        await engine.dispose()
        raise
    return engine


class ControlPlaneStore:
    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self._engine = engine
        self.url = url
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @classmethod
    async def open(cls, url: str) -> ControlPlaneStore:
        """At this SatGate's schema, or ControlPlaneError (open_engine)."""
        return cls(await open_engine(url), url)

    async def schema_revision(self) -> str | None:
        return await current_revision(self._engine)

    # ------------------------------------------------------------------ delegation tree
    async def record_delegation(self, record: DelegationRecord) -> None:
        async with self._engine.begin() as db:
            await db.execute(delegations.insert().values(**asdict(record)))

    async def delegations(self, tenant: str, token_id: str) -> list[DelegationRecord]:
        query = (
            select(delegations)
            .where(delegations.c.tenant == tenant, delegations.c.token_id == token_id)
            .order_by(delegations.c.created_at)
        )
        async with self._engine.connect() as db:
            return [DelegationRecord(**row._mapping) for row in await db.execute(query)]

    async def subtree(self, tenant: str, delegation_id: str) -> list[DelegationRecord]:
        """The delegation and every delegation below it, oldest first."""
        tree = (
            select(delegations.c.delegation_id)
            .where(delegations.c.tenant == tenant, delegations.c.delegation_id == delegation_id)
            .cte("tree", recursive=True)
        )
        child = delegations.alias("child")
        tree = tree.union(
            select(child.c.delegation_id)
            .join(tree, child.c.parent_delegation_id == tree.c.delegation_id)
            .where(child.c.tenant == tenant)
        )
        query = (
            select(delegations)
            .join(tree, delegations.c.delegation_id == tree.c.delegation_id)
            .where(delegations.c.tenant == tenant)
            .order_by(delegations.c.created_at)
        )
        async with self._engine.connect() as db:
            return [DelegationRecord(**row._mapping) for row in await db.execute(query)]

    # ------------------------------------------------------------------ trust policies
    async def revoke_policy(self, name: str, tenant: str, reason: str) -> bool:
        """False when it was revoked already (by this replica or another)."""
        statement = (
            self._insert(revoked_policies)
            .values(name=name, tenant=tenant, revoked_at=time.time(), reason=reason)
            .on_conflict_do_nothing()
        )
        async with self._engine.begin() as db:
            return (await db.execute(statement)).rowcount == 1

    async def is_policy_revoked(self, name: str) -> bool:
        """Asked at every exchange a policy would issue for: a revocation through any replica holds at once."""
        async with self._engine.connect() as db:
            return bool(await db.scalar(select(exists().where(revoked_policies.c.name == name))))

    async def revoked_policies(self) -> frozenset[str]:
        async with self._engine.connect() as db:
            return frozenset(await db.scalars(select(revoked_policies.c.name)))

    # ------------------------------------------------------------------ one-time credentials
    async def first_use(self, digest: bytes, fresh_until: float) -> bool:
        """Records a one-time credential (a presigned request's signature) while it could still be presented;
        False when it was already used. Atomic across every replica sharing this store."""
        async with self._engine.begin() as db:
            await db.execute(delete(used_signatures).where(used_signatures.c.fresh_until < time.time()))
            inserted = await db.execute(
                self._insert(used_signatures).values(digest=digest, fresh_until=fresh_until).on_conflict_do_nothing()
            )
            return inserted.rowcount == 1

    async def close(self) -> None:
        await self._engine.dispose()
