"""The control plane's tables (SQLAlchemy Core): one definition for SQLite and PostgreSQL. Migrations in
`migrations/versions/` create and change them; this module is what the code reads and writes through."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    cast,
    func,
)
from sqlalchemy.sql.elements import ColumnElement

metadata = MetaData()


def time_slot(column: ColumnElement[float], step_seconds: int, dialect: str) -> ColumnElement[int]:
    """The slot of `step_seconds` a unix time falls in: floor, then integer division (PostgreSQL's cast to an
    integer rounds, SQLite's truncates, which is the floor for times after 1970)."""
    seconds = func.floor(column) if dialect == "postgresql" else column
    return cast(seconds, BigInteger) // step_seconds


delegations = Table(
    "delegations",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("delegation_id", Text, primary_key=True),
    Column("token_id", Text, nullable=False),  # the root token every descendant shares
    Column("parent_delegation_id", Text),  # NULL: the parent is the root token
    Column("created_at", Float, nullable=False),
    Column("actor", Text, nullable=False),
    Column("label", Text),
    Column("budget_credits", BigInteger),
    Column("scopes", Text),
    Column("expires_at", Text, nullable=False),
    Column("bucket_id", Text),  # the budget bucket this delegation added (None without budget_credits)
    Column("budget_window", Text),  # "500/1d": the windowed budget it added
    Column("window_bucket_id", Text),
    Index("delegations_by_token", "tenant", "token_id"),
    Index("delegations_by_parent", "tenant", "parent_delegation_id"),  # the subtree walk, a level at a time
)

# The token registry (SPEC: Control plane): every root token the Mint issued. Children are in `delegations`.
tokens = Table(
    "tokens",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("token_id", Text, primary_key=True),
    Column("issued_at", Float, nullable=False),
    Column("source", Text, nullable=False),  # exchange | cli
    Column("policy", Text),
    Column("subject", Text),  # the workload identity it was exchanged for
    Column("label", Text),
    Column("budget_credits", BigInteger),
    Column("bucket_id", Text),
    Column("scopes", Text),
    Column("expires_at", Text),
    Column("budget_window", Text),
    Column("window_bucket_id", Text),
    # Identity budgets (SPEC v2.2): what the budget belongs to (NULL: this token alone), the rule that set it and
    # the period of its credits bucket; the ledger holds these buckets' limits.
    Column("budget_per", Text),
    Column("budget_rule", Text),
    Column("budget_period", Text),
    Index("tokens_by_time", "tenant", "issued_at"),
    Index("tokens_by_policy_budget", "tenant", "policy", "budget_per"),
)

# Trust policies managed by API: each change a new version; `document` None once deleted.
policy_versions = Table(
    "policy_versions",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("tenant", Text, nullable=False),
    Column("action", Text, nullable=False),  # create | update | disable | enable | delete
    Column("document", JSON),
    Column("created_at", Float, nullable=False),
    Column("actor", Text, nullable=False),
    UniqueConstraint("tenant", "name", "version", name="policy_versions_once"),  # two writers of one: one wins
)

budget_changes = Table(
    "budget_changes",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant", Text, nullable=False),
    Column("target_id", Text, nullable=False),  # a token id or a delegation id
    Column("bucket_id", Text, nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_at", Float, nullable=False),
    Index("budget_changes_by_target", "tenant", "target_id"),
)

# Revoked file policies, per tenant (an API policy's revocation is its `revoke` version)
policy_revocations = Table(
    "policy_revocations",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("revoked_at", Float, nullable=False),
    Column("reason", Text, nullable=False),
)

# One-time credentials (a presigned STS request's signature) while they could still be presented.
used_signatures = Table(
    "used_signatures",
    metadata,
    Column("digest", LargeBinary, primary_key=True),
    Column("fresh_until", Float, nullable=False),
    Index("used_signatures_by_expiry", "fresh_until"),  # the sweep reads only what expired
)

# One row per decision, from every authz host (SPEC: usage records): no PII, no payloads, no query strings.
usage = Table(
    "usage",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("tenant", Text),
    Column("token_id", Text),
    Column("route", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("credits", BigInteger, nullable=False),
    Column("attributes", JSON, nullable=False),  # the sealed attributes declared in authz.attributes
    Index("usage_by_time", "time"),
)

# The hash-chained audit log (SPEC: Audit): appends are serialised, so writers on many hosts keep one chain.
audit = Table(
    "audit",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("record", Text, nullable=False),  # canonical JSON, exactly what was hashed
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
)

# "Once per window" events (budget_exhausted, aggregated refusals): the first writer in the window appends.
audit_once = Table(
    "audit_once",
    metadata,
    Column("key", Text, primary_key=True),
    Column("until", Float, nullable=False),
)
