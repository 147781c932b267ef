"""Audit events the data plane raises: a budget running out, and a budget crossing an alert threshold. Queued and
written by a background task into the Mint's audit chain (whose webhooks deliver them); a decision never waits for
one. `budget_exhausted`: one per exhausted bucket per 10 minutes across every worker and replica (the audit store
decides who is first), naming the bucket and the token's delegation. `budget_threshold`: one per bucket, threshold
and window — the ledger decided it in the debit's own step, so no replica raises it twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import structlog

from satgate.audit import AuditEvent, AuditLog, Once
from satgate.ledger import Bucket, Ledger, LedgerUnavailable
from satgate.ledger.base import Crossing
from satgate.timefmt import format_utc
from satgate.tokens.verify import VerifiedToken

log = structlog.get_logger("satgate.authz")
REPEAT_AFTER_SECONDS = 600


@dataclass(frozen=True)
class _Refused:
    token: VerifiedToken
    cost: int
    remaining: int | None


@dataclass(frozen=True)
class _Crossed:
    tenant: str
    token_id: str
    crossings: tuple[Crossing, ...]
    buckets: tuple[Bucket, ...]
    remaining: int | None


class BudgetExhaustedEvents:
    def __init__(self, audit: AuditLog, ledger: Ledger, *, queue_size: int = 1000) -> None:
        self._audit = audit
        self._ledger = ledger
        self._queue: asyncio.Queue[_Refused | _Crossed] = asyncio.Queue(queue_size)
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

    def crossed(self, token: VerifiedToken, crossings: tuple[Crossing, ...], remaining: int | None) -> None:
        self.crossed_by(token.tenant, token.token_id, crossings, token.buckets, remaining)

    def crossed_by(
        self,
        tenant: str,
        token_id: str,
        crossings: tuple[Crossing, ...],
        buckets: tuple[Bucket, ...],
        remaining: int | None,
    ) -> None:
        """Also for a settlement's excess charge, which knows the token by its claim alone."""
        with contextlib.suppress(asyncio.QueueFull):  # the ledger holds the crossing; only the alert is lost
            self._queue.put_nowait(_Crossed(tenant, token_id, crossings, buckets, remaining))

    async def _write_crossed(self, crossed: _Crossed) -> None:
        periods = {b.bucket_id: b.period for b in crossed.buckets}
        for crossing in crossed.crossings:
            details: dict[str, object] = {
                "bucket_id": crossing.bucket_id,
                "threshold": crossing.permille / 1000,
                "threshold_percent": crossing.permille / 10,
                "bucket_limit": crossing.limit,
                "remaining": crossed.remaining,
            }
            period = periods.get(crossing.bucket_id)
            if period is not None and crossing.window is not None:
                details |= {
                    "window": str(period),
                    "window_start": format_utc(period.start(crossing.window)),
                    "window_end": format_utc(period.end(crossing.window)),
                }
            event = AuditEvent(
                type="budget_threshold",
                tenant=crossed.tenant,
                actor="authz",
                token_id=crossed.token_id,
                details=details,
            )
            await self._audit.append(event)

    async def _exhausted_bucket(self, refused: _Refused) -> tuple[Bucket | None, int | None]:
        """The first bucket of the chain that cannot pay and its limit now — changes included, the ledger's own for
        an identity budget (off the decision path: one read)."""
        token = refused.token
        balances = await self._ledger.balances_each(token.tenant, token.buckets)
        for bucket, (left, limit) in zip(token.buckets, balances, strict=True):
            if left < refused.cost:
                return bucket, bucket.limit if limit is None else limit
        return None, None

    async def _write(self, refused: _Refused) -> None:
        token = refused.token
        try:
            bucket, limit = await self._exhausted_bucket(refused)
        except LedgerUnavailable:
            bucket, limit = None, None
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
                "bucket_limit": limit if limit is not None else bucket.limit if bucket else None,
                "delegation_id": delegation_id,
                "cost": refused.cost,
                "remaining": refused.remaining,
                "delegations": len(token.revocation_ids) - 1,
            },
        )
        key = f"budget_exhausted:{token.tenant}:{bucket.bucket_id if bucket else token.token_id}"
        await self._audit.append(event, once=Once(key, REPEAT_AFTER_SECONDS))

    async def _write_one(self, item: _Refused | _Crossed) -> None:
        if isinstance(item, _Crossed):
            await self._write_crossed(item)
        else:
            await self._write(item)

    async def _write_forever(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._write_one(item)
            except Exception as exc:  # the audit store being down must not stop the writer
                event = "budget_threshold" if isinstance(item, _Crossed) else "budget_exhausted"
                log.error("audit_write_failed", event=event, detail=str(exc))

    async def close(self) -> None:
        """Before the ledger closes: what is already queued still lands."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            with contextlib.suppress(Exception):
                await self._write_one(self._queue.get_nowait())
        await self._audit.close()
