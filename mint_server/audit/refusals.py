"""Refusals anyone can send many of, counted and written to the audit chain once per interval with the count — a
flood costs a few rows (and webhook events), not one per request:
- exchange refusals before any identity was verified (junk, forged or untrusted credentials), per source and
  reason; refusals of a verified identity (no rule matched, policy disabled, rate limited) stay one event each;
- admin API operations an authenticated admin was refused (404 for what its tenant does not hold, 409, 400), per
  tenant, caller, operation and reason (a missing role is `admin_denied` at once, from authentication)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog

from satgate.audit import AuditEvent, AuditLog

log = structlog.get_logger("satgate.mint")
OTHER_SOURCES = "*"  # past max_sources distinct sources in one interval, the rest are counted together


class _Counted:
    """Counts per key in memory (bounded by distinct sources) and writes one event per key and interval."""

    event_type = ""

    def __init__(
        self,
        audit: AuditLog,
        *,
        interval_seconds: float = 60.0,
        max_sources: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._audit = audit
        self._interval = interval_seconds
        self._max_sources = max_sources
        self._clock = clock
        self._counts: Counter[tuple[Any, ...]] = Counter()
        self._sources: set[str] = set()
        self._window_started = clock()

    def _count(self, source: str, rest: tuple[Any, ...]) -> None:
        """No I/O: the refusal is answered at once, its audit record comes with the next flush."""
        if source not in self._sources:
            if len(self._sources) >= self._max_sources:
                source = OTHER_SOURCES
            else:
                self._sources.add(source)
        self._counts[(source, *rest)] += 1

    def _event(self, key: tuple[Any, ...], details: dict[str, Any]) -> AuditEvent:
        raise NotImplementedError

    async def flush(self) -> None:
        """One audit event per key of the interval; what could not be written is counted into the next one."""
        pending = sorted(self._counts.items())
        self._counts, self._sources = Counter(), set()
        started, self._window_started = self._window_started, self._clock()
        window = round(self._window_started - started, 3)
        while pending:
            key, count = pending[0]
            try:
                await self._audit.append(self._event(key, {"count": count, "window_seconds": window}))
            except BaseException:
                for unwritten_key, unwritten in pending:
                    self._counts[unwritten_key] += unwritten
                    self._sources.add(unwritten_key[0])
                raise
            pending.pop(0)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception as exc:  # the audit store may be down for a while: keep counting, try again
                log.error("refusals_audit_failed", kind=self.event_type, detail=str(exc))


class UnauthenticatedRefusals(_Counted):
    event_type = "exchange_denied"

    def record(self, source: str, provider: str, reason: str, status: int) -> None:
        self._count(source, (provider, reason, status))

    def _event(self, key: tuple[Any, ...], details: dict[str, Any]) -> AuditEvent:
        source, provider, reason, status = key
        details = {"provider": provider, "reason": reason, "status": status, **details, "source": source}
        return AuditEvent(type="exchange_denied", details=details)


class AdminRefusals(_Counted):
    event_type = "admin_denied"

    def record(self, tenant: str, actor: str, operation: str, reason: str, status: int) -> None:
        self._count(tenant, (actor, operation, reason, status))

    def _event(self, key: tuple[Any, ...], details: dict[str, Any]) -> AuditEvent:
        tenant, actor, operation, reason, status = key
        details = {"operation": operation, "reason": reason, "status": status, **details}
        return AuditEvent(
            type="admin_denied", tenant=None if tenant == OTHER_SOURCES else tenant, actor=actor, details=details
        )
