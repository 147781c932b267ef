"""The Mint prunes the audit log past `mint.audit_retention_days`, hourly, after a signed checkpoint
(satgate/audit/retention.py). Replicas may prune at once: each appends its own checkpoint, both verify."""

from __future__ import annotations

import asyncio

import structlog

from satgate.audit import AuditLog
from satgate.audit.retention import prune
from satgate.keyring import KeyringFile

log = structlog.get_logger("satgate.mint")


async def prune_audit_forever(
    audit: AuditLog, keyring: KeyringFile, *, retention_days: float, interval_seconds: float = 3600
) -> None:
    while True:
        try:
            pruned = await prune(audit, keyring.current, retention_days=retention_days)
        except Exception as exc:  # the store is down: try again next interval, never stop the Mint
            log.error("audit_prune_failed", detail=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        else:
            if pruned is not None:
                log.info("audit_pruned", removed=pruned.removed, through_seq=str(pruned.through_seq))
        await asyncio.sleep(interval_seconds)
