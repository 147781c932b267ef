"""Audit retention (SPEC: Control plane — retention with signed checkpoints). Records older than the retention are
removed, and the chain stays verifiable: before anything is removed, an `audit_pruned` record is appended naming
the last removed record's seq and hash, signed with a key only the keyring holder derives. A verifier then accepts
the first retained record following that hash — and nothing else: records removed without a checkpoint (by someone
with database access but not the keyring), or a forged checkpoint, fail verification like any other edit."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from satgate.audit.chain import GENESIS, AuditEvent, AuditLog, first_break
from satgate.keyring import Keyring
from satgate.timefmt import format_utc

DEFAULT_AUDIT_RETENTION_DAYS = 90


def checkpoint_signature(keyring: Keyring, kid: str, seq: Any, head_hash: str, removed: int) -> str:
    message = f"satgate-audit-checkpoint\n{seq}\n{head_hash}\n{removed}".encode()
    return hmac.new(keyring.audit_checkpoint_key(kid), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Pruned:
    removed: int
    through_seq: Any
    head_hash: str


async def prune(log: AuditLog, keyring: Keyring, *, retention_days: float, now: float | None = None) -> Pruned | None:
    """Remove the records older than `retention_days`, after a signed checkpoint of the last one removed."""
    cutoff = format_utc((now if now is not None else time.time()) - retention_days * 86400)
    records = await log.records()
    old = 0  # a prefix of the chain: a record newer than the cutoff ends it (hosts' clocks may disagree a little)
    while old < len(records) and str(records[old][1].get("time", "")) < cutoff:
        old += 1
    if old == 0:
        return None
    seq, _record, _prev, head_hash = records[old - 1]
    kid = keyring.active_kid
    await log.append(
        AuditEvent(
            type="audit_pruned",
            actor="satgate",
            details={
                "through_seq": str(seq),
                "head_hash": head_hash,
                "removed": old,
                "before": cutoff,
                "kid": kid,
                "signature": checkpoint_signature(keyring, kid, seq, head_hash, old),
            },
        )
    )
    after = await log.records()  # the checkpoint at least follows the pruned head
    first_kept = next(r[0] for r in after if r[2] == head_hash)
    removed = await log.delete_before(first_kept)
    return Pruned(removed, seq, head_hash)


def retained_start(records: list[tuple[Any, dict[str, Any], str, str]], keyring: Keyring) -> str:
    """The hash the first retained record may follow: GENESIS, or a pruned head a valid checkpoint vouches for."""
    if not records or records[0][2] == GENESIS:
        return GENESIS
    wanted = records[0][2]
    for _seq, record, _prev, _hash in records:
        details = record.get("details") or {}
        if record.get("type") != "audit_pruned" or details.get("head_hash") != wanted:
            continue
        kid = details.get("kid")
        if not isinstance(kid, str) or not keyring.has_kid(kid):
            continue
        removed = details.get("removed")
        if not isinstance(removed, int):
            continue
        expected = checkpoint_signature(keyring, kid, details.get("through_seq"), wanted, removed)
        if hmac.compare_digest(expected, str(details.get("signature", ""))):
            return wanted
    return GENESIS


async def verify_retained(
    log: AuditLog, keyring: Keyring
) -> tuple[Any | None, list[tuple[Any, dict[str, Any], str, str]]]:
    """(the seq of the first break or None, the records): the whole retained chain, from its checkpoint."""
    records = await log.records()
    return first_break(records, retained_start(records, keyring)), records
