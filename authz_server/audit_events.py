"""Audit events the data plane raises: today, a budget running out. Queued and written by a background task into
the Mint's audit chain; a decision never waits for it. One event per exhausted bucket per 10 minutes across every
worker and replica (the audit store decides who is first), naming the bucket and the token's delegation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import structlog

from satgate.audit import AuditEvent, AuditLog, Once
from satgate.ledger import Bucket, Ledger, LedgerUnavailable
from satgate.tokens.verify import VerifiedToken

log = structlog.get_logger("satgate.authz")
REPEAT_AFTER_SECONDS = 600


@dataclass(frozen=True)
class _Refused:
    token: VerifiedToken
    cost: int
    remaining: int | None


class BudgetExhaustedEvents:
    def __init__(self, audit: AuditLog, ledger: Ledger, *, queue_size: int = 1000) -> None:
        self._audit = audit
        self._ledger = ledger
        self._queue: asyncio.Queue[_Refused] = asyncio.Queue(queue_size)
        self._last_seen: dict[str, float] = {}  # per token in this process: bounds the work behind a burst of 402s
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
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_Refused(token, cost, remaining))

    async def _exhausted_bucket(self, refused: _Refused) -> Bucket | None:
        """The first bucket of the chain that cannot pay (off the decision path: one read per bucket)."""
        for bucket in refused.token.buckets:
            left = await self._ledger.remaining(refused.token.tenant, (bucket,))
            if left is not None and left < refused.cost:
                return bucket
        return None

    async def _write(self, refused: _Refused) -> None:
        token = refused.token
        try:
            bucket = await self._exhausted_bucket(refused)
        except LedgerUnavailable:
            bucket = None
        if bucket is None and token.buckets:
            bucket = token.buckets[-1]  # the store is gone or already refunded: name the innermost
        delegation_id = token.revocation_ids[-1] if len(token.revocation_ids) > 1 else None
        event = AuditEvent(
            type="budget_exhausted",
            tenant=token.tenant,
            actor="authz",
            token_id=token.token_id,
            details={
                "bucket_id": bucket.bucket_id if bucket else None,
                "bucket_limit": bucket.limit if bucket else None,
                "delegation_id": delegation_id,
                "cost": refused.cost,
                "remaining": refused.remaining,
                "delegations": len(token.revocation_ids) - 1,
            },
        )
        key = f"budget_exhausted:{token.tenant}:{bucket.bucket_id if bucket else token.token_id}"
        await self._audit.append(event, once=Once(key, REPEAT_AFTER_SECONDS))

    async def _write_forever(self) -> None:
        while True:
            refused = await self._queue.get()
            try:
                await self._write(refused)
            except Exception as exc:  # the audit store being down must not stop the writer
                log.error("audit_write_failed", event="budget_exhausted", detail=str(exc))

    async def close(self) -> None:
        """Before the ledger closes: what is already queued still lands."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            with contextlib.suppress(Exception):
                await self._write(self._queue.get_nowait())
        await self._audit.close()
