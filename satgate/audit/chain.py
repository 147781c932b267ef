"""Append-only, hash-chained audit log (SPEC: Audit): hash = sha256(prev_hash + canonical JSON of the record).
Records carry identifiers and decisions only: no PII, no payloads, no token strings."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from satgate.timefmt import format_utc

GENESIS = "0" * 64

# The event catalogue: every control-plane action appends one of these (docs/operations.md: Audit log).
EVENT_TYPES = {
    "mint": "a token minted offline from the keyring (satgate token mint)",
    "exchange": "a workload identity exchanged for a token; policy, rule, TTL, budget",
    "exchange_denied": "an exchange refused, with its reason (invalid_identity, no_matching_rule, rate_limited…)",
    "delegate": "a child token delegated server-side: delegation id, parent step, budget, TTL",
    "revoke": "a token id or delegation id revoked (admin API or CLI), with the known descendants",
    "policy_change": "trust policies changed: a file reloaded (names, disabled) or an API change (action, version)",
    "policy_revoked": "a trust policy revoked through the admin API",
    "admin_access": "an admin call accepted (the admin's login): path",
    "admin_denied": "an admin call refused: reason and path",
    "budget_change": "a budget topped up or cut through the admin API: target id, delta, remaining, reason",
    "budget_exhausted": "a budget could not pay (raised by authz; once per bucket per 10 minutes): bucket, delegation",
    "debit_refunded": "a debit refunded because the upstream did not deliver (refund_on): credits, reason, status",
    "debit_settled": "a reserved debit settled to the upstream's reported cost: reserved, actual, charged, overshoot",
    "budget_threshold": "a bucket crossed an alert threshold (once per bucket, threshold and window): remaining",
    "key_rotation": "a key added and made active, or a key retired (satgate keys rotate|retire)",
    "keyring_loaded": "the Mint loaded a changed keyring: active kid, kids added and retired (whoever wrote it)",
    "config_loaded": "a Mint started: a digest of its settings (secrets left out), ledger and control plane redacted",
    "audit_pruned": "records past the retention removed: the pruned head's seq and hash, count, kid and signature",
}

# SPEC: Control plane — audit event types grouped in categories (filters in the admin API, console and CLI).
CATEGORIES = ("token", "delegation", "budget", "policy", "identity", "key", "admin", "config")
EVENT_CATEGORIES = {
    "mint": "token",
    "exchange": "identity",
    "exchange_denied": "identity",
    "delegate": "delegation",
    "revoke": "token",
    "policy_change": "policy",
    "policy_revoked": "policy",
    "admin_access": "admin",
    "admin_denied": "admin",
    "budget_change": "budget",
    "budget_exhausted": "budget",
    "debit_refunded": "budget",
    "debit_settled": "budget",
    "budget_threshold": "budget",
    "key_rotation": "key",
    "keyring_loaded": "key",
    "config_loaded": "config",
    "audit_pruned": "config",
}


def category_of(event_type: str) -> str:
    return EVENT_CATEGORIES.get(event_type, "config")


@dataclass(frozen=True)
class AuditEvent:
    type: str
    tenant: str | None = None
    actor: str | None = None
    token_id: str | None = None
    policy: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    time: str = field(default_factory=lambda: format_utc(time.time()))


def canonical_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, record: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(record)).encode()).hexdigest()


def first_break(records: Iterable[tuple[Any, dict[str, Any], str, str]], start: str = GENESIS) -> Any | None:
    """The seq of the first record that breaks the chain (edited, removed or reordered), or None. `start`: the hash
    the first record must follow (GENESIS, or the pruned head a signed checkpoint vouches for)."""
    expected_prev = start
    for seq, record, prev, digest in records:
        if prev != expected_prev or chain_hash(prev, record) != digest:
            return seq
        expected_prev = digest
    return None


@dataclass(frozen=True)
class Once:
    """Append only if no event with this key was appended (by any process) in the last `seconds`."""

    key: str
    seconds: float


class AuditLog(Protocol):
    """Where the chain lives: the PostgreSQL control plane (every host), a Redis Stream (with the Redis ledger),
    or a SQLite file (one host)."""

    async def append(self, event: AuditEvent, *, once: Once | None = None) -> str | None:
        """The new record's hash; None when `once` found its key already used in the window."""
        ...

    async def records(self) -> list[tuple[Any, dict[str, Any], str, str]]:
        """(seq, record, prev_hash, hash) in chain order."""
        ...

    async def verify(self) -> Any | None: ...

    async def head(self) -> Any | None:
        """The seq of the newest record (None when empty): where a tail starts."""
        ...

    async def records_after(self, seq: Any | None, limit: int = 500) -> list[dict[str, Any]]:
        """Records appended after `seq` (from the start when None), whoever appended them, with seq and hash."""
        ...

    async def delete_before(self, seq: Any) -> int:
        """Retention: remove every record before `seq` (which stays); the number removed. Callers append the
        signed checkpoint first (satgate/audit/retention.py)."""
        ...

    async def close(self) -> None: ...


CSV_FIELDS = ("seq", "time", "type", "tenant", "actor", "token_id", "policy", "details", "prev_hash", "hash")


def audit_csv(records: list[dict[str, Any]]) -> str:
    """One row a record; details as canonical JSON, so a row can be re-hashed."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({**record, "details": canonical_json(record.get("details", {}))})
    return out.getvalue()
