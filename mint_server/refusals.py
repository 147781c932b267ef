"""Exchange refusals before any identity was verified (junk, forged or untrusted credentials): anyone can send
them, so they are counted per source and reason and written to the audit chain once per interval, with the count
— a flood costs a few rows (and webhook events), not one per request. Refusals of a verified identity (no rule
matched, policy disabled, rate limited) stay one audit event each."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import structlog

from satgate.audit import AuditEvent, AuditLog

log = structlog.get_logger("satgate.mint")
OTHER_SOURCES = "*"  # past max_sources distinct sources in one interval, the rest are counted together


class UnauthenticatedRefusals:
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
        self._counts: Counter[tuple[str, str, str, int]] = Counter()
        self._sources: set[str] = set()
        self._window_started = clock()

    def record(self, source: str, provider: str, reason: str, status: int) -> None:
        """No I/O: the refusal is answered at once, its audit record comes with the next flush."""
        if source not in self._sources:
            if len(self._sources) >= self._max_sources:
                source = OTHER_SOURCES
            else:
                self._sources.add(source)
        self._counts[(source, provider, reason, status)] += 1

    async def flush(self) -> None:
        """One audit event per (source, provider, reason, status) of the interval; what could not be written
        is counted into the next interval."""
        pending = sorted(self._counts.items())
        self._counts, self._sources = Counter(), set()
        started, self._window_started = self._window_started, self._clock()
        window = round(self._window_started - started, 3)
        while pending:
            (source, provider, reason, status), count = pending[0]
            details = {"provider": provider, "reason": reason, "status": status, "count": count}
            details |= {"source": source, "window_seconds": window}
            try:
                await self._audit.append(AuditEvent(type="exchange_denied", details=details))
            except BaseException:
                for key, unwritten in pending:
                    self._counts[key] += unwritten
                    self._sources.add(key[0])
                raise
            pending.pop(0)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception as exc:  # the audit store may be down for a while: keep counting, try again
                log.error("exchange_refusals_audit_failed", detail=str(exc))
