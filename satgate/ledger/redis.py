"""Shared ledger for replicas on Redis or Redis Cluster: every check is one EVALSHA of one Lua script, so the
ledger marker, the deadline, revocation, the debit's record and all budget buckets are judged and debited
atomically (SPEC: Ledger)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from satgate.ledger.base import (
    IDEMPOTENCY_WINDOW_SECONDS,
    Bucket,
    BudgetAdjustment,
    DebitRequest,
    DebitResult,
    LedgerNotInitialised,
    LedgerUnavailable,
    Outcome,
    SettleResult,
    windowed,
)
from satgate.ledger.marker import REDIS_SLOTS, all_redis_marker_keys, redis_marker_key_for_tenant
from satgate.ledger.redis_client import async_client
from satgate.ledger.redis_keys import (
    UNMARKED,
    adjustment_key,
    bucket_key,
    bucket_keys,
    crossings_of,
    debit_record_key,
    limit_pairs,
    outcome,
    revoked_key,
    window_key,
)
from satgate.ledger.redis_lua import ADJUST, DEBIT, REFUND, SET_LIMIT, SETTLE
from satgate.ledger.redis_replication import Replication
from satgate.ledger.redis_url import RedisSettings, redis_settings
from satgate.ledger.refunds import Refunds

log = structlog.get_logger("satgate.ledger")
_PROBED_SLOTS = 16  # spread over the slot range: every master of a cluster owns some of them


_QUEUE_TIMEOUTS = 4  # without a deadline, a call waits at most this many timeouts for a connection


@dataclass(slots=True)
class _Queued:
    """A debit waiting for the next pipeline, and the deadlines it was sent with (one per send)."""

    request: DebitRequest
    keys: list[str]
    rest: list[Any]
    answer: asyncio.Future[DebitResult]
    at: float  # the check's time: the windows its buckets are judged in
    deadlines: list[float] = field(default_factory=list)


def _settle(answer: asyncio.Future[DebitResult], *, error: BaseException) -> None:
    if not answer.done():
        answer.set_exception(error)


class RedisLedger:
    """`client` is a redis.asyncio Redis or RedisCluster. No blind client-side retries: a call is resent once only
    when its connection broke, and a debit then under the same debit id, so the script answers from its record
    if the first one ran. A debit whose outcome is unknown (timeout) is refunded once its deadline has passed, so
    whatever ran in time is given back and whatever runs later spends nothing. Failures become
    LedgerUnavailable, so checks fail closed."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        timeout: float = 0.25,
        max_in_flight: int = 64,
        clock: Callable[[], float] = time.time,
        idempotency_window_seconds: int = IDEMPOTENCY_WINDOW_SECONDS,
        wait_replicas: int = 0,
    ) -> None:
        if wait_replicas and isinstance(client, RedisCluster):
            raise ValueError("wait_replicas needs one primary (Redis or Sentinel), not a Cluster")
        self._client = client
        self._replication = Replication(wait_replicas, timeout)
        self._window = idempotency_window_seconds  # each record's TTL: the SPEC's 10 minutes but in tests/bench
        self._timeout = timeout
        self._clock = clock
        self._debit = client.register_script(DEBIT)
        self._refund = client.register_script(REFUND)
        self._adjust = client.register_script(ADJUST)
        self._settle = client.register_script(SETTLE)
        self._set_limit = client.register_script(SET_LIMIT)
        self._refunds = Refunds(self)
        # redis-py raises once its pool is exhausted; queue here instead, inside the same per-call timeout.
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._ready = False  # _initialize: the cluster's slot map, the scripts
        self._init_lock = asyncio.Lock()
        self._queued: list[_Queued] = []  # debits for the next pipeline
        self._sending: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, url: str, *, idempotency_window_seconds: int = IDEMPOTENCY_WINDOW_SECONDS) -> RedisLedger:
        return cls.from_settings(redis_settings(url), idempotency_window_seconds=idempotency_window_seconds)

    @classmethod
    def from_settings(
        cls, settings: RedisSettings, *, idempotency_window_seconds: int = IDEMPOTENCY_WINDOW_SECONDS
    ) -> RedisLedger:
        client = async_client(
            settings,
            socket_timeout=settings.timeout,
            socket_connect_timeout=settings.timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
            max_connections=settings.max_connections,
        )
        return cls(
            client,
            timeout=settings.timeout,
            max_in_flight=settings.max_connections,
            idempotency_window_seconds=idempotency_window_seconds,
            wait_replicas=settings.wait_replicas,
        )

    async def _initialize(self) -> None:
        """Once, not under every caller's timeout: a cluster client learns the slot map, and the scripts are
        loaded, so that a burst on a cold client does not pay a NOSCRIPT round trip and a SCRIPT LOAD per
        connection (cancelling a burst of half-initialised calls leaves broken connections behind). A Redis
        restarted since loads them again on its first NOSCRIPT."""
        async with self._init_lock:
            if not self._ready:
                try:
                    async with asyncio.timeout(max(self._timeout, 5.0)):
                        if isinstance(self._client, RedisCluster):
                            await self._client.initialize()
                        for script in (self._debit, self._refund, self._adjust, self._settle, self._set_limit):
                            await self._client.script_load(script.script)
                except (RedisError, OSError, TimeoutError) as exc:
                    raise LedgerUnavailable(f"ledger: redis: cannot reach it: {type(exc).__name__}: {exc}") from exc
                self._ready = True

    async def _call(self, send: Callable[[float], Awaitable[Any]], deadline: float | None = None) -> Any:
        """Every operation here is safe to send twice (debits and refunds carry their id, SADD and reads are
        idempotent), so one that meets a broken connection — a pooled one that idled through an outage — is sent
        once more on a fresh one instead of failing the check. `send` gets the moment this call gives up.

        The timeout bounds the call on its connection, not its wait for one: a burst queues for the pool (every
        slot frees within the timeout, even with Redis paused), up to the check's own deadline when it has one —
        a cold pool opening its connections under a burst must not turn queued checks into 503s."""
        if not self._ready:
            await self._initialize()
        if self._in_flight.locked():  # a timer only for a call that must queue (one per call costs ~40 µs)
            queue_wait = self._timeout * _QUEUE_TIMEOUTS if deadline is None else max(deadline - self._clock(), 0)
            try:
                async with asyncio.timeout(queue_wait):
                    await self._in_flight.acquire()
            except TimeoutError as exc:
                raise LedgerUnavailable("ledger: redis: no connection came free in time (the store is slow)") from exc
        else:
            await self._in_flight.acquire()  # free: returns at once
        try:
            gives_up = self._clock() + self._timeout
            # asyncio.timeout, not wait_for: no task per call (measured ~35 µs less per check).
            async with asyncio.timeout(self._timeout):
                try:
                    return await send(gives_up)
                except RedisConnectionError:
                    return await send(gives_up)
        except (RedisError, OSError, TimeoutError) as exc:
            raise LedgerUnavailable(f"ledger: redis: {type(exc).__name__}: {exc}") from exc
        finally:
            self._in_flight.release()

    async def _script(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        if not self._replication.replicas:
            return await self._call(lambda _gives_up: script(keys=keys, args=args))
        return await self._replication.script(self._client, self._call, script.sha, keys, args, load=self._reload)

    async def _reload(self) -> None:
        self._ready = False
        await self._initialize()

    def _refund_after(self, request: DebitRequest, deadline: float) -> None:
        """The debit may have run before its deadline, its reply lost. Past the deadline no copy of it can spend
        any more, so a refund then gives back exactly what one copy spent, or nothing."""

        wait = max(deadline - self._clock(), 0) + _CLOCK_MARGIN_SECONDS
        self._refunds.owe(request, "outcome_unknown", not_before=wait)

    def _checked_at(self, request: DebitRequest) -> float:
        return self._clock() if request.checked_at is None else request.checked_at

    async def refund(self, request: DebitRequest) -> int:
        if request.debit_id is None or not request.buckets:
            return 0
        keys, keeps = bucket_keys(request.tenant, request.buckets, self._checked_at(request))
        keys.insert(0, debit_record_key(request.tenant, request.debit_id))
        return int(await self._script(self._refund, keys, [request.attempt, *keeps]))

    async def settle(self, request: DebitRequest, actual: int) -> SettleResult:
        if request.debit_id is None or not request.buckets:
            return SettleResult(settled=False)
        at = self._checked_at(request)
        keys, keeps = bucket_keys(request.tenant, request.buckets, at)
        keys.insert(0, debit_record_key(request.tenant, request.debit_id))
        args = [
            request.attempt,
            actual,
            *limit_pairs(request.buckets, keeps),
            len(request.thresholds),
            *request.thresholds,
        ]
        reply = await self._script(self._settle, keys, args)
        match reply:
            case ["none"]:
                return SettleResult(settled=False)
            case ["ok", charged, overshoot, remaining, *crossed]:
                crossings = crossings_of(request, at, crossed) if crossed else ()
                return SettleResult(True, int(charged), int(overshoot), int(remaining), crossings)
        raise LedgerUnavailable(f"ledger: redis: unexpected reply {reply!r}")

    async def adjust(
        self, tenant: str, bucket: Bucket, delta: int, change_id: str, *, at: float | None = None
    ) -> BudgetAdjustment:
        lifetime = bucket_key(tenant, bucket.bucket_id)
        window = bucket.window(self._clock() if at is None else at)
        keys = [
            redis_marker_key_for_tenant(tenant),
            lifetime,
            adjustment_key(tenant, change_id),
            lifetime if window is None else window_key(tenant, bucket.bucket_id, window),
        ]
        args = [bucket.limit, delta, self._window, "0" if window is None else "1"]
        reply = await self._script(self._adjust, keys, args)
        match reply:
            case ["unmarked"]:
                raise LedgerNotInitialised(UNMARKED)
            case ["replay", remaining]:
                return BudgetAdjustment(applied=True, remaining=int(remaining), replayed=True)
            case ["below", remaining]:
                return BudgetAdjustment(applied=False, remaining=int(remaining))
            case ["ok", remaining]:
                return BudgetAdjustment(applied=True, remaining=int(remaining))
        raise LedgerUnavailable(f"ledger: redis: unexpected reply {reply!r}")

    async def set_limit(self, tenant: str, bucket: Bucket, limit: int, *, if_unset: bool = False) -> bool:
        windowed(bucket)
        keys = [redis_marker_key_for_tenant(tenant), bucket_key(tenant, bucket.bucket_id)]
        reply = await self._script(self._set_limit, keys, [bucket.limit - limit, "1" if if_unset else "0"])
        if reply == "unmarked":
            raise LedgerNotInitialised(UNMARKED)
        if reply not in ("ok", "kept"):
            raise LedgerUnavailable(f"ledger: redis: unexpected reply {reply!r}")
        return reply == "ok"

    async def probe(self) -> None:
        found = await asyncio.gather(*(self._call(_command(self._client.exists, key)) for key in _probed_keys()))
        if not all(found):
            raise LedgerNotInitialised(UNMARKED.replace("for this tenant's slot", "for some hash slots"))

    async def debit(self, request: DebitRequest) -> DebitResult:
        """Debits that arrive in one turn of the loop share one pipeline (one write, one round trip, one pooled
        connection); each is still its own EVALSHA, atomic on its own. Cancel-safe like every backend."""
        tenant = request.tenant
        at = self._checked_at(request)
        keys = [redis_marker_key_for_tenant(tenant), revoked_key(tenant), debit_record_key(tenant, request.debit_id)]
        buckets, keeps = bucket_keys(tenant, request.buckets, at)
        keys += buckets
        rest: list[Any] = [
            "1" if request.debit_id is not None else "0",
            request.attempt,
            len(request.revocation_ids),
            *request.revocation_ids,
            *limit_pairs(request.buckets, keeps),
            len(request.thresholds),
            *request.thresholds,
        ]
        queued = _Queued(request, keys, rest, asyncio.get_running_loop().create_future(), at)
        if isinstance(self._client, RedisCluster):  # redis-py refuses scripts in cluster pipelines: one call each
            await self._send([queued])
            return queued.answer.result()
        self._queued.append(queued)
        if len(self._queued) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return await queued.answer  # cancelled: skipped while queued, else settled (and refunded) by _send

    def _flush(self) -> None:
        batch = [queued for queued in self._queued if not queued.answer.cancelled()]
        self._queued = []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _pipeline(self, batch: list[_Queued], gives_up: float) -> tuple[list[Any], bool]:
        """The batch's replies, and whether replicas acknowledged them (wait_replicas)."""

        def arguments(queued: _Queued) -> list[Any]:
            # Never later than this call gives up: once the caller stopped waiting, the script must not spend.
            deadline = gives_up if queued.request.deadline is None else min(gives_up, queued.request.deadline)
            queued.deadlines.append(deadline)
            return [queued.request.cost, self._window, f"{deadline:.6f}", *queued.rest]

        if isinstance(self._client, RedisCluster):
            (queued,) = batch
            return [await self._debit(keys=queued.keys, args=arguments(queued))], True
        pipe = self._client.pipeline(transaction=False)
        for queued in batch:
            pipe.evalsha(self._debit.sha, len(queued.keys), *queued.keys, *arguments(queued))
        self._replication.wait(pipe)
        return self._replication.split(await pipe.execute(raise_on_error=False))

    async def _send(self, batch: list[_Queued]) -> None:
        deadlines = [q.request.deadline for q in batch]
        queue_deadline = None if None in deadlines else max(d for d in deadlines if d is not None)
        try:
            replies, replicated = await self._call(lambda gives_up: self._pipeline(batch, gives_up), queue_deadline)
            unsent = [q for q, reply in zip(batch, replies, strict=True) if isinstance(reply, NoScriptError)]
            if unsent:  # Redis restarted without its scripts (it never ran those): load them, send those again
                self._ready = False
                await self._initialize()
                resent, replicated_too = await self._call(lambda g: self._pipeline(unsent, g), queue_deadline)
                again = iter(resent)
                replies = [next(again) if isinstance(reply, NoScriptError) else reply for reply in replies]
                replicated = replicated and replicated_too
        except (Exception, asyncio.CancelledError) as exc:  # every waiter gets an answer, whatever went wrong
            error = exc if isinstance(exc, LedgerUnavailable) else LedgerUnavailable(f"ledger: redis: {exc!r}")
            for queued in batch:
                self._unknown(queued, error)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for queued, reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                self._unknown(queued, LedgerUnavailable(f"ledger: redis: {type(reply).__name__}: {reply}"))
                continue
            try:
                result = outcome(reply, queued.request, queued.at)
            except LedgerUnavailable as exc:
                _settle(queued.answer, error=exc)
                continue
            if not replicated and result.outcome is Outcome.DEBITED:  # a refusal is safe to answer unreplicated
                self._unknown(queued, self._replication.unacknowledged())
                continue
            if queued.answer.cancelled():
                if result.spent:
                    self._refunds.owe(queued.request, "caller_gone")  # committed for a caller that left
                continue
            queued.answer.set_result(result)

    def _unknown(self, queued: _Queued, error: LedgerUnavailable) -> None:
        """Sent (maybe run) but unanswered: refunded once no copy of it can spend any more."""
        request = queued.request
        if queued.deadlines and request.debit_id is not None and request.buckets and request.cost:
            self._refund_after(request, max(queued.deadlines))
        _settle(queued.answer, error=error)

    async def revoke(self, tenant: str, revocation_id: str, reason: str = "") -> bool:
        return bool(await self._replication.write(self._client, self._call, "SADD", revoked_key(tenant), revocation_id))

    async def is_revoked(self, tenant: str, revocation_ids: tuple[str, ...]) -> bool:
        found = await self._call(lambda _g: self._client.smismember(revoked_key(tenant), list(revocation_ids)))
        return any(found)

    async def remaining(self, tenant: str, buckets: tuple[Bucket, ...], *, at: float | None = None) -> int | None:
        each = await self.remaining_each(tenant, buckets, at=at)
        return min(each) if each else None

    async def revoked_each(self, tenant: str, revocation_ids: tuple[str, ...]) -> list[bool]:
        if not revocation_ids:
            return []
        found = await self._call(lambda _g: self._client.smismember(revoked_key(tenant), list(revocation_ids)))
        return [bool(f) for f in found]

    async def remaining_each(self, tenant: str, buckets: tuple[Bucket, ...], *, at: float | None = None) -> list[int]:
        return [left for left, _limit in await self.balances_each(tenant, buckets, at=at)]

    async def balances_each(
        self, tenant: str, buckets: tuple[Bucket, ...], *, at: float | None = None
    ) -> list[tuple[int, int | None]]:
        if not buckets:
            return []
        keys, _keeps = bucket_keys(tenant, buckets, self._clock() if at is None else at)
        counters = [key for i, key in enumerate(keys) if i % 3 != 2]  # one tenant: one slot, so one MGET
        spent = await self._call(_command(self._client.mget, counters))
        found: list[tuple[int, int | None]] = []
        for j, bucket in enumerate(buckets):
            changes, window = int(spent[2 * j] or 0), int(spent[2 * j + 1] or 0)
            if bucket.period is None:  # its one counter holds spending and changes alike
                found.append((max(bucket.limit - changes, 0), None))
            else:
                found.append((max(bucket.limit - changes - window, 0), bucket.limit - changes))
        return found

    async def close(self) -> None:
        if self._sending:  # pipelines in flight settle (and owe their refunds) first
            await asyncio.wait(list(self._sending), timeout=self._timeout * (_QUEUE_TIMEOUTS + 2))
        await self._refunds.drain(self._timeout + 2 * _CLOCK_MARGIN_SECONDS + 1)  # those waiting for a deadline
        await self._client.aclose()


@functools.cache
def _probed_keys() -> tuple[str, ...]:
    """Markers spread over the slot range (every master of a cluster owns some), built once: probes run each second."""
    keys = all_redis_marker_keys()
    return tuple(keys[i * REDIS_SLOTS // _PROBED_SLOTS] for i in range(_PROBED_SLOTS))


def _command(method: Callable[..., Awaitable[Any]], *args: Any) -> Callable[[float], Awaitable[Any]]:
    return lambda _gives_up: method(*args)


_CLOCK_MARGIN_SECONDS = 0.1  # Redis judges deadlines by its clock: allow for skew against ours
