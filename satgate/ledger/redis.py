"""Shared ledger for replicas on Redis or Redis Cluster: every check is one EVALSHA of one Lua script, so
revocation, idempotency and all budget buckets are judged and debited atomically (SPEC: Ledger)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from satgate.ledger.base import (
    IDEMPOTENCY_WINDOW_SECONDS,
    Bucket,
    DebitRequest,
    DebitResult,
    LedgerUnavailable,
    Outcome,
)
from satgate.ledger.redis_lua import DEBIT


def _key(tenant: str, kind: str, name: str) -> str:
    return f"sg:{{{tenant}}}:{kind}:{name}"


def revoked_key(tenant: str) -> str:
    return _key(tenant, "revoked", "ids")


def bucket_key(tenant: str, bucket_id: str) -> str:
    return _key(tenant, "b", bucket_id)


def idempotency_key(tenant: str, request_key: str | None) -> str:
    digest = hashlib.blake2b((request_key or "").encode(), digest_size=16).hexdigest()
    return _key(tenant, "i", digest)


class RedisLedger:
    """`client` is a redis.asyncio Redis or RedisCluster. No client-side retries: a debit whose reply was lost
    must not be sent again blind. Failures and timeouts become LedgerUnavailable, so checks fail closed."""

    def __init__(self, client: Redis | RedisCluster, *, timeout: float = 0.25, max_in_flight: int = 64) -> None:
        self._client = client
        self._timeout = timeout
        self._debit = client.register_script(DEBIT)
        # redis-py raises once its pool is exhausted; queue here instead, inside the same per-call timeout.
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._ready = not isinstance(client, RedisCluster)
        self._init_lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, cluster: bool = False, timeout: float = 0.25, max_connections: int = 64
    ) -> RedisLedger:
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": True,
            "max_connections": max_connections,
        }
        client: Redis | RedisCluster = (
            RedisCluster.from_url(url, **options) if cluster else Redis.from_url(url, **options)
        )
        return cls(client, timeout=timeout, max_in_flight=max_connections)

    async def _initialize(self) -> None:
        """A cluster client learns the slot map on first use; do that once, not under every caller's timeout
        (cancelling a burst of half-initialised calls leaves broken connections behind)."""
        async with self._init_lock:
            if not self._ready:
                try:
                    await asyncio.wait_for(self._client.initialize(), max(self._timeout, 5.0))
                except (RedisError, OSError, TimeoutError) as exc:
                    raise LedgerUnavailable(f"ledger: redis cluster: {type(exc).__name__}: {exc}") from exc
                self._ready = True

    async def _call(self, operation: Awaitable[Any]) -> Any:
        if not self._ready:
            try:
                await self._initialize()
            except LedgerUnavailable:
                if isinstance(operation, Coroutine):
                    operation.close()
                raise

        try:
            # asyncio.timeout, not wait_for: no task per call (measured ~35 µs less per check).
            async with asyncio.timeout(self._timeout), self._in_flight:
                return await operation
        except (RedisError, OSError, TimeoutError) as exc:
            raise LedgerUnavailable(f"ledger: redis: {type(exc).__name__}: {exc}") from exc

    async def debit(self, request: DebitRequest) -> DebitResult:
        tenant = request.tenant
        keys = [revoked_key(tenant), idempotency_key(tenant, request.idempotency_key)]
        keys += [bucket_key(tenant, b.bucket_id) for b in request.buckets]
        args: list[Any] = [
            request.cost,
            IDEMPOTENCY_WINDOW_SECONDS,
            "1" if request.idempotency_key is not None else "0",
            len(request.revocation_ids),
            *request.revocation_ids,
            *(b.limit for b in request.buckets),
        ]
        reply = await self._call(self._debit(keys=keys, args=args))
        match reply:
            case ["revoked"]:
                return DebitResult(Outcome.REVOKED)
            case ["replay", seen]:
                charged, remaining = seen.split(":")
                return DebitResult(Outcome.DEBITED, charged=int(charged), remaining=int(remaining), replayed=True)
            case ["insufficient", remaining]:
                return DebitResult(Outcome.INSUFFICIENT, charged=0, remaining=int(remaining))
            case ["ok", charged, remaining]:
                return DebitResult(
                    Outcome.DEBITED, charged=int(charged), remaining=int(remaining) if remaining else None
                )
        raise LedgerUnavailable(f"ledger: redis: unexpected reply {reply!r}")

    async def revoke(self, tenant: str, revocation_id: str, reason: str = "") -> bool:
        return bool(await self._call(self._client.sadd(revoked_key(tenant), revocation_id)))

    async def is_revoked(self, tenant: str, revocation_ids: tuple[str, ...]) -> bool:
        found = await self._call(self._client.smismember(revoked_key(tenant), list(revocation_ids)))
        return any(found)

    async def remaining(self, tenant: str, buckets: tuple[Bucket, ...]) -> int | None:
        if not buckets:
            return None
        spent = []
        for bucket in buckets:  # tenant keys share a slot, but MGET on a cluster client splits by node anyway
            spent.append(int(await self._call(self._client.get(bucket_key(tenant, bucket.bucket_id))) or 0))
        return max(min(b.limit - s for b, s in zip(buckets, spent, strict=True)), 0)

    async def close(self) -> None:
        await self._client.aclose()
