"""Audit events the data plane raises: today, a token's budget running out. Queued and written by a background
task into the Mint's audit chain; a decision never waits for it, and a burst of 402s for one token is one event."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from satgate.audit import AuditEvent, AuditLog
from satgate.tokens.verify import VerifiedToken

log = structlog.get_logger("satgate.authz")
REPEAT_AFTER_SECONDS = 600


class BudgetExhaustedEvents:
    def __init__(self, audit: AuditLog, *, queue_size: int = 1000) -> None:
        self._audit = audit
        self._queue: asyncio.Queue[AuditEvent] = asyncio.Queue(queue_size)
        self._last_seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_forever())

    def __call__(self, token: VerifiedToken, cost: int, remaining: int | None) -> None:
        now = time.monotonic()
        if now - self._last_seen.get(token.fingerprint, -REPEAT_AFTER_SECONDS) < REPEAT_AFTER_SECONDS:
            return
        if len(self._last_seen) > 100_000:
            self._last_seen.clear()
        self._last_seen[token.fingerprint] = now
        event = AuditEvent(
            type="budget_exhausted",
            tenant=token.tenant,
            actor="authz",
            token_id=token.token_id,
            details={"cost": cost, "remaining": remaining, "delegations": len(token.revocation_ids) - 1},
        )
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(event)

    async def _write_forever(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._audit.append(event)
            except Exception as exc:  # the audit store being down must not stop the writer
                log.error("audit_write_failed", event=event.type, detail=str(exc))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():  # what is already queued still lands
            with contextlib.suppress(Exception):
                await self._audit.append(self._queue.get_nowait())
        await self._audit.close()
