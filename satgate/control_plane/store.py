"""The control-plane store: state Mint replicas share (the delegation tree, revoked policies, one-time
credentials), on SQLite (one host) or PostgreSQL (several), the same statements for both."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from satgate.control_plane.engine import create_engine, failure_reason
from satgate.control_plane.migrate import check_schema, current_revision, upgrade
from satgate.control_plane.policy_versions import PolicyVersions
from satgate.control_plane.schema import (
    budget_changes,
    delegations,
    policy_revocations,
    time_slot,
    tokens,
    used_signatures,
)
from satgate.control_plane.url import ControlPlaneError, redacted, sqlite_file


class ControlPlaneUnavailable(ControlPlaneError):
    pass


# What a store call raises when the database cannot answer (down, unreachable, locked too long): callers answer
# 503 and change nothing, never 500 and never as if the record were absent.
STORE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, ControlPlaneError)


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
    bucket_id: str | None = None  # the budget bucket it added (None without budget_credits)
    budget_window: str | None = None  # "500/1d": the windowed budget it added
    window_bucket_id: str | None = None  # that budget's bucket

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TokenRecord:
    """A root token the Mint issued (SPEC: Control plane — the token registry)."""

    tenant: str
    token_id: str
    issued_at: float
    source: str  # exchange | cli
    policy: str | None
    subject: str | None
    label: str | None
    budget_credits: int | None
    bucket_id: str | None
    scopes: str | None
    expires_at: str | None
    budget_window: str | None = None
    window_bucket_id: str | None = None
    budget_per: str | None = None  # identity budgets: whose budget (None: this token's own buckets)
    budget_rule: str | None = None  # the rule whose budget it is
    budget_period: str | None = None  # the period of the credits bucket (the rule's ttl)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BudgetChangeRecord:
    tenant: str
    target_id: str  # a token id or a delegation id
    bucket_id: str
    delta: int
    remaining: int
    actor: str
    reason: str
    changed_at: float

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
        self.policies = PolicyVersions(engine)

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

    async def delegation(self, tenant: str, delegation_id: str) -> DelegationRecord | None:
        query = select(delegations).where(delegations.c.tenant == tenant, delegations.c.delegation_id == delegation_id)
        async with self._engine.connect() as db:
            row = (await db.execute(query)).first()
        return DelegationRecord(**row._mapping) if row else None

    # ------------------------------------------------------------------ token registry
    async def record_token(self, record: TokenRecord) -> None:
        """Idempotent: a token registered twice (a CLI mint replayed) keeps its first record."""
        async with self._engine.begin() as db:
            await db.execute(self._insert(tokens).values(**asdict(record)).on_conflict_do_nothing())

    async def token(self, tenant: str, token_id: str) -> TokenRecord | None:
        async with self._engine.connect() as db:
            row = (
                await db.execute(select(tokens).where(tokens.c.tenant == tenant, tokens.c.token_id == token_id))
            ).first()
        return TokenRecord(**row._mapping) if row else None

    async def labels(self, tenant: str, token_ids: list[str]) -> dict[str, str | None]:
        """The label of each registered token among `token_ids` (one query per 500 ids)."""
        found: dict[str, str | None] = {}
        async with self._engine.connect() as db:
            for start in range(0, len(token_ids), 500):
                chunk = token_ids[start : start + 500]
                query = select(tokens.c.token_id, tokens.c.label).where(
                    tokens.c.tenant == tenant, tokens.c.token_id.in_(chunk)
                )
                found.update({row.token_id: row.label for row in await db.execute(query)})
        return found

    async def tokens(
        self,
        tenant: str,
        *,
        policy: str | None = None,
        label: str | None = None,
        before: float | None = None,
        limit: int = 100,
    ) -> list[TokenRecord]:
        """Newest first; `before` pages on (the last page's oldest issued_at)."""
        query = select(tokens).where(tokens.c.tenant == tenant)
        if policy is not None:
            query = query.where(tokens.c.policy == policy)
        if label is not None:
            query = query.where(tokens.c.label.contains(label, autoescape=True))
        if before is not None:
            query = query.where(tokens.c.issued_at < before)
        query = query.order_by(tokens.c.issued_at.desc()).limit(limit)
        async with self._engine.connect() as db:
            return [TokenRecord(**row._mapping) for row in await db.execute(query)]

    async def identity_buckets(self, tenant: str, policy: str) -> list[tuple[str, str, str, str]]:
        """(rule, kind, bucket id, period) of every identity budget tokens were issued on under a policy: what a
        change of its budgets applies to."""
        found: set[tuple[str, str, str, str]] = set()
        query = (
            select(
                tokens.c.budget_rule,
                tokens.c.bucket_id,
                tokens.c.budget_period,
                tokens.c.window_bucket_id,
                tokens.c.budget_window,
            )
            .where(tokens.c.tenant == tenant, tokens.c.policy == policy, tokens.c.budget_per.is_not(None))
            .distinct()
        )
        async with self._engine.connect() as db:
            for rule, credits_id, period, window_id, window in await db.execute(query):
                if credits_id and period:
                    found.add((rule, "credits", credits_id, period))
                if window_id and window:
                    found.add((rule, "window", window_id, window.partition("/")[2]))
        return sorted(found)

    async def identity_budget_holders(self, tenant: str, policy: str, limit: int = 10_000) -> list[dict[str, Any]]:
        """Per identity budget of a policy and subject: its buckets and how many tokens were issued on them."""
        t = tokens.c
        query = (
            select(
                t.budget_rule,
                t.bucket_id,
                t.budget_period,
                t.window_bucket_id,
                t.budget_window,
                t.subject,
                func.count().label("issued"),
            )
            .where(t.tenant == tenant, t.policy == policy, t.budget_per.is_not(None))
            .group_by(t.budget_rule, t.bucket_id, t.budget_period, t.window_bucket_id, t.budget_window, t.subject)
            .limit(limit)
        )
        async with self._engine.connect() as db:
            return [dict(row._mapping) for row in await db.execute(query)]

    async def issued_timeline(self, tenant: str, since: float, step_seconds: int) -> dict[int, int]:
        """Tokens issued per slot of `step_seconds` (slot start → count)."""
        slot = time_slot(tokens.c.issued_at, step_seconds, self._engine.dialect.name).label("slot")
        query = select(slot, func.count()).where(tokens.c.tenant == tenant, tokens.c.issued_at >= since).group_by(slot)
        async with self._engine.connect() as db:
            return {int(s) * step_seconds: int(n) for s, n in await db.execute(query)}

    # ------------------------------------------------------------------ budget changes
    async def record_budget_change(self, record: BudgetChangeRecord) -> None:
        async with self._engine.begin() as db:
            await db.execute(budget_changes.insert().values(**asdict(record)))

    async def budget_changes(self, tenant: str, target_id: str) -> list[BudgetChangeRecord]:
        query = (
            select(budget_changes)
            .where(budget_changes.c.tenant == tenant, budget_changes.c.target_id == target_id)
            .order_by(budget_changes.c.seq)
        )
        async with self._engine.connect() as db:
            return [
                BudgetChangeRecord(**{k: v for k, v in row._mapping.items() if k != "seq"})
                for row in await db.execute(query)
            ]

    # ------------------------------------------------------------------ trust policies
    async def revoke_policy(self, tenant: str, name: str, reason: str) -> bool:
        """A file policy's revocation (permanent). False when it was revoked already (by any replica)."""
        statement = (
            self._insert(policy_revocations)
            .values(tenant=tenant, name=name, revoked_at=time.time(), reason=reason)
            .on_conflict_do_nothing()
        )
        async with self._engine.begin() as db:
            return (await db.execute(statement)).rowcount == 1

    async def is_policy_revoked(self, tenant: str, name: str) -> bool:
        """Asked at every exchange a policy would issue for: a revocation through any replica holds at once."""
        revoked = policy_revocations.c
        async with self._engine.connect() as db:
            return bool(await db.scalar(select(exists().where(revoked.tenant == tenant, revoked.name == name))))

    async def revoked_policies(self, tenant: str) -> frozenset[str]:
        query = select(policy_revocations.c.name).where(policy_revocations.c.tenant == tenant)
        async with self._engine.connect() as db:
            return frozenset(await db.scalars(query))

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
