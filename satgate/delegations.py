"""The delegation tree and revoked trust policies: control-plane state kept by the Mint (SQLite, WAL)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from satgate.sqlite_db import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS delegations (
    tenant TEXT NOT NULL, delegation_id TEXT NOT NULL, token_id TEXT NOT NULL,
    parent_delegation_id TEXT, created_at REAL NOT NULL, actor TEXT NOT NULL,
    label TEXT, budget_credits INTEGER, scopes TEXT, expires_at TEXT NOT NULL,
    PRIMARY KEY (tenant, delegation_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS delegations_by_token ON delegations (tenant, token_id);
CREATE TABLE IF NOT EXISTS revoked_policies (
    name TEXT PRIMARY KEY, tenant TEXT NOT NULL, revoked_at REAL NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS used_signatures (digest BLOB PRIMARY KEY, fresh_until REAL NOT NULL) WITHOUT ROWID;
"""


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


class ControlPlaneStore:
    def __init__(self, path: str | Path) -> None:
        self._db = open_sqlite(path, _SCHEMA)

    def record_delegation(self, record: DelegationRecord) -> None:
        self._db.execute(
            "INSERT INTO delegations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.tenant,
                record.delegation_id,
                record.token_id,
                record.parent_delegation_id,
                record.created_at,
                record.actor,
                record.label,
                record.budget_credits,
                record.scopes,
                record.expires_at,
            ),
        )

    def delegations(self, tenant: str, token_id: str) -> list[DelegationRecord]:
        rows = self._db.execute(
            "SELECT * FROM delegations WHERE tenant = ? AND token_id = ? ORDER BY created_at", (tenant, token_id)
        ).fetchall()
        return [DelegationRecord(*row) for row in rows]

    def subtree(self, tenant: str, delegation_id: str) -> list[DelegationRecord]:
        """The delegation and every delegation below it."""
        rows = self._db.execute(
            """WITH RECURSIVE tree(id) AS (
                   SELECT delegation_id FROM delegations WHERE tenant = ?1 AND delegation_id = ?2
                   UNION SELECT d.delegation_id FROM delegations d JOIN tree ON d.parent_delegation_id = tree.id
                   WHERE d.tenant = ?1)
               SELECT d.* FROM delegations d JOIN tree ON d.delegation_id = tree.id WHERE d.tenant = ?1
               ORDER BY d.created_at""",
            (tenant, delegation_id),
        ).fetchall()
        return [DelegationRecord(*row) for row in rows]

    def revoke_policy(self, name: str, tenant: str, reason: str) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO revoked_policies VALUES (?, ?, ?, ?)", (name, tenant, time.time(), reason)
        )
        return cursor.rowcount == 1

    def revoked_policies(self) -> frozenset[str]:
        return frozenset(row[0] for row in self._db.execute("SELECT name FROM revoked_policies"))

    def first_use(self, digest: bytes, fresh_until: float) -> bool:
        """Records a one-time credential (a presigned request's signature) while it could still be presented;
        False when it was already used. Atomic across the Mint replicas that share this file."""
        self._db.execute("DELETE FROM used_signatures WHERE fresh_until < ?", (time.time(),))
        cursor = self._db.execute("INSERT OR IGNORE INTO used_signatures VALUES (?, ?)", (digest, fresh_until))
        return cursor.rowcount == 1

    def close(self) -> None:
        self._db.close()
