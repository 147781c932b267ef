"""Audit events delivered to HTTP endpoints. Signed (HMAC-SHA256 over "<timestamp>.<body>", like Stripe's), retried
with exponential backoff, in generic JSON or Slack/Discord shape. Deliveries run off a bounded queue: nothing
that produced an event ever waits for one (and authz decisions never produce them)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import structlog

from satgate.audit import AuditLog

log = structlog.get_logger("mint_server.audit.webhooks")
SIGNATURE_HEADER = "X-Satgate-Signature"
TIMESTAMP_HEADER = "X-Satgate-Timestamp"
ATTEMPT_HEADER = "X-Satgate-Delivery-Attempt"


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    secret: str
    format: Literal["json", "slack", "discord"] = "json"
    events: frozenset[str] | None = None  # None: every event
    max_attempts: int = 5
    timeout_seconds: float = 5.0
    backoff_seconds: float = 0.5

    def wants(self, record: Mapping[str, Any]) -> bool:
        return self.events is None or record.get("type") in self.events


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """For receivers (and the tests): constant-time comparison of the v1 signature."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def summary(record: Mapping[str, Any]) -> str:
    parts = [f"*{record.get('type')}*"]
    for key in ("tenant", "policy", "token_id", "actor"):
        if record.get(key):
            parts.append(f"{key}={record[key]}")
    details = record.get("details") or {}
    if details.get("reason"):
        parts.append(f"reason={details['reason']}")
    if record.get("type") == "budget_threshold":
        parts.append(f"reached {details.get('threshold_percent'):g}% of {details.get('bucket_limit')} credits")
        if details.get("window"):
            parts.append(f"(window {details['window']} until {details.get('window_end')})")
        parts.append(f"remaining={details.get('remaining')}")
    if record.get("type") == "debit_settled" and details.get("overshoot"):
        parts.append(f"overshoot={details['overshoot']} credits (reserved {details.get('reserved')})")
    return "SatGate " + " ".join(parts)


def payload(target: WebhookTarget, record: Mapping[str, Any]) -> dict[str, Any]:
    if target.format == "slack":
        return {"text": summary(record)}
    if target.format == "discord":
        return {"content": summary(record), "allowed_mentions": {"parse": []}}
    return {"event": dict(record)}


@dataclass
class WebhookDispatcher:
    session: aiohttp.ClientSession
    targets: list[WebhookTarget]
    queue_size: int = 10_000
    dropped: int = 0
    delivered: int = 0
    failed: int = 0
    _queues: list[asyncio.Queue[Mapping[str, Any]]] = field(default_factory=list)
    _workers: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        for target in self.targets:
            queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue(self.queue_size)
            self._queues.append(queue)
            self._workers.append(asyncio.create_task(self._deliver_forever(target, queue)))

    async def tail(self, audit: AuditLog, interval: float = 0.5) -> None:
        """Deliver what anyone appends to the chain from now on — the Mint's own events and those the authz
        servers raise (budget_exhausted). With several Mint replicas, enable webhooks on one of them."""
        if self.targets:
            start = await audit.head()  # now, not when the task first runs: nothing appended after start-up is skipped
            self._workers.append(asyncio.create_task(self._tail_forever(audit, interval, start)))

    async def _tail_forever(self, audit: AuditLog, interval: float, cursor: Any) -> None:
        while True:
            try:
                batch = await audit.records_after(cursor)
            except Exception as exc:  # the store being away must not end the tail
                log.warning("webhook_tail_failed", detail=str(exc))
                batch = []
            for record in batch:
                self.notify(record)
                cursor = record["seq"]
            if not batch:
                await asyncio.sleep(interval)

    async def settle(self, timeout: float = 10.0) -> None:
        """Tests: wait until the tail has caught up and the queues are empty."""
        await asyncio.sleep(0.6)
        await asyncio.wait_for(self.drain(), timeout)

    def notify(self, record: Mapping[str, Any]) -> None:
        """Never blocks: a full queue drops the event (counted), the audit log still has it."""
        for target, queue in zip(self.targets, self._queues, strict=True):
            if not target.wants(record):
                continue
            try:
                queue.put_nowait(record)
            except asyncio.QueueFull:
                self.dropped += 1

    async def _deliver_forever(self, target: WebhookTarget, queue: asyncio.Queue[Mapping[str, Any]]) -> None:
        while True:
            record = await queue.get()
            try:
                await self._deliver(target, record)
            finally:
                queue.task_done()

    async def _deliver(self, target: WebhookTarget, record: Mapping[str, Any]) -> None:
        body = json.dumps(payload(target, record), separators=(",", ":"), sort_keys=True).encode()
        for attempt in range(1, target.max_attempts + 1):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(target.secret, timestamp, body),
                TIMESTAMP_HEADER: timestamp,
                ATTEMPT_HEADER: str(attempt),
            }
            try:
                async with self.session.post(
                    target.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=target.timeout_seconds)
                ) as response:
                    if 200 <= response.status < 300:
                        self.delivered += 1
                        return
                    status = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            if attempt < target.max_attempts:
                await asyncio.sleep(target.backoff_seconds * 2 ** (attempt - 1))
        self.failed += 1
        log.warning(
            "webhook_failed", url=target.url, event=record.get("type"), last=status, attempts=target.max_attempts
        )

    async def drain(self) -> None:
        """Wait until everything queued has been delivered or given up (tests, shutdown)."""
        for queue in self._queues:
            await queue.join()

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
