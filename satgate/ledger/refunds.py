"""Refunds owed for answers nobody received, paid in the background and retried while the store is down: one
mechanism for the pipeline (an answer too late) and both stores (a caller gone, an outcome unknown)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog

from satgate.ledger.base import LedgerUnavailable

if TYPE_CHECKING:
    from satgate.ledger.base import DebitRequest, Ledger

log = structlog.get_logger("satgate.ledger")
# Retried for as long as a store failover can take (Sentinel's down-after plus its election), well within the
# debit record's life (the idempotency window) that a refund needs; backoff capped so a store back is seen soon.
RETRY_SECONDS = 120.0
_MAX_BACKOFF_SECONDS = 5.0


class Refunds:
    """Background refunds, kept until paid; `drain()` waits for them before a ledger or server closes."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._pending: set[asyncio.Task[None]] = set()

    def owe(self, request: DebitRequest, why: str, *, not_before: float = 0.0) -> None:
        """Refund what this attempt spent (or nothing, if it spent nothing), `not_before` seconds from now."""
        task = asyncio.get_running_loop().create_task(self._pay(request, why, not_before))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _pay(self, request: DebitRequest, why: str, not_before: float) -> None:
        await asyncio.sleep(not_before)
        credits = await pay(self._ledger, request, why)
        if credits:
            log.info("debit_refunded", reason=why, tenant=request.tenant, credits=credits)

    async def drain(self, timeout: float = 5.0) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout)


async def pay(ledger: Ledger, request: DebitRequest, why: str) -> int:
    """Refund `request`'s debit, retrying while the store is down; the credits refunded (0: nothing, or given up)."""
    give_up = time.monotonic() + RETRY_SECONDS
    attempt = 0
    while True:
        try:
            return await ledger.refund(request)
        except LedgerUnavailable as exc:
            if time.monotonic() >= give_up:
                break
            log.warning("refund_retry", reason=why, attempt=attempt, detail=str(exc))
            await asyncio.sleep(min(0.2 * 2**attempt, _MAX_BACKOFF_SECONDS))
            attempt += 1
    log.error("refund_failed", reason=why, tenant=request.tenant, cost=request.cost)
    return 0
