"""The cluster's own record of a key rotation: a keyring is often rotated on an operator's machine and shipped as
a Secret, so the command's audit record lands in that machine's chain. The Mint appends `keyring_loaded` to the
deployment's chain whenever it picks up a changed keyring — what the servers now trust, whoever wrote the file."""

from __future__ import annotations

import asyncio

import structlog

from satgate.audit import AuditEvent, AuditLog
from satgate.keyring import Keyring, KeyringFile

log = structlog.get_logger("satgate.mint")


class KeyringAudit:
    def __init__(self, keyring: KeyringFile, audit: AuditLog) -> None:
        self._audit = audit
        self._previous = keyring.current
        self._pending: set[asyncio.Task[None]] = set()
        keyring.on_change(self._changed)

    def _changed(self, current: Keyring) -> None:
        previous, self._previous = self._previous, current
        details = {
            "active_kid": current.active_kid,
            "previous_active_kid": previous.active_kid,
            "added": sorted(set(current.keys) - set(previous.keys)),
            "retired": sorted(set(previous.keys) - set(current.keys)),
        }
        task = asyncio.get_running_loop().create_task(self._append(details))  # called from the keyring watch
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _append(self, details: dict) -> None:
        try:
            await self._audit.append(AuditEvent(type="keyring_loaded", actor="mint", details=details))
        except Exception as exc:
            log.error("keyring_audit_failed", detail=f"{type(exc).__name__}: {exc}", **details)
