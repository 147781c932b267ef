"""The audit chain on a Redis Stream, for deployments whose ledger is Redis: Mint replicas append to one chain.
The hash is computed here (Redis Lua has no SHA-256); a script appends only if the chain head is still the one
hashed against, and a writer that lost the race re-reads the head and tries again."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict
from typing import Any, cast

import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from satgate.audit.chain import GENESIS, AuditEvent, Once, canonical_json, chain_hash, first_break
from satgate.ledger.base import LedgerUnavailable
from satgate.ledger.redis_client import async_client, sync_client
from satgate.ledger.redis_replication import Replication
from satgate.ledger.url import redis_settings

STREAM = "sg:{satgate-audit}:stream"
HEAD = "sg:{satgate-audit}:head"  # same hash tag: one cluster slot for the script
_APPEND = """
local head = redis.call('GET', KEYS[2]) or ARGV[4]
if head ~= ARGV[2] then
  return false
end
if KEYS[3] and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[5]) then
  return 'once'
end
local id = redis.call('XADD', KEYS[1], '*', 'record', ARGV[1], 'prev', ARGV[2], 'hash', ARGV[3])
redis.call('SET', KEYS[2], ARGV[3])
return id
"""
_MAX_RACES = 50
_CONTROL_PLANE_TIMEOUT = 2.0  # seconds


async def _sent_once(send: Callable[[float], Awaitable[Any]]) -> Any:
    """The audit log's calls: sent once, under the client's own socket timeout."""
    return await send(0.0)


class RedisStreamAuditLog:
    def __init__(self, ledger_url: str) -> None:
        settings = redis_settings(ledger_url)
        # The control plane's own bound, not the check's: an admin action can wait out a replica that a busy
        # machine descheduled (or whose fsync stalled) for a moment, where a debit must answer within its deadline.
        timeout = max(settings.timeout, _CONTROL_PLANE_TIMEOUT)
        options: dict[str, Any] = {"decode_responses": True, "socket_timeout": timeout}
        self._client: Redis | RedisCluster = async_client(settings, **options)
        # Reads (export, verify) are synchronous, like the SQLite log's.
        self._reader: redis.Redis | redis.RedisCluster = sync_client(settings, **options)
        self._append = self._client.register_script(_APPEND)
        self._replication = Replication(settings.wait_replicas, timeout)  # WAIT: half the socket's bound
        self._one_at_a_time = asyncio.Lock()

    async def append(self, event: AuditEvent, *, once: Once | None = None) -> str | None:
        record = asdict(event)
        record["details"] = dict(event.details)
        # One append at a time per process: then only other processes (a few replicas) race for the head.
        # Optimistic retries among dozens of local coroutines would need as many rounds as there are writers.
        async with self._one_at_a_time:
            for attempt in range(_MAX_RACES):
                prev = str(await self._client.get(HEAD) or GENESIS)  # decode_responses: str
                digest = chain_hash(prev, record)
                keys, args = [STREAM, HEAD], [canonical_json(record), prev, digest, GENESIS]
                if once is not None:  # the window's key, in the chain's slot, set by the script that appends
                    keys.append(f"sg:{{satgate-audit}}:once:{once.key}")
                    args.append(str(int(once.seconds * 1000)))
                entry_id = await self._appended(keys, args)
                if entry_id == "once":
                    return None
                if entry_id:
                    return digest
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter, not crypto
        raise RuntimeError("audit: could not append after repeated races for the chain head")

    async def _appended(self, keys: list[str], args: list[str]) -> Any:
        """The script's reply; behind Sentinel only once a replica holds the entry (else the failover that
        follows could drop it with the primary)."""
        if not self._replication.replicas:
            return await self._append(keys=keys, args=args)
        try:
            return await self._replication.script(
                self._client, _sent_once, self._append.sha, keys, args, load=lambda: self._client.script_load(_APPEND)
            )
        except (redis.RedisError, OSError) as exc:
            raise LedgerUnavailable(f"audit: redis: {type(exc).__name__}: {exc}") from exc

    async def records(self) -> list[tuple[str, dict[str, Any], str, str]]:
        return list(self._records())

    def _records(self) -> Iterator[tuple[str, dict[str, Any], str, str]]:
        cursor = "-"
        while True:
            try:  # decode_responses=True: ids and fields are str
                batch = cast(list[tuple[str, dict[str, str]]], self._reader.xrange(STREAM, min=cursor, count=500))
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise LedgerUnavailable(f"audit: redis: {type(exc).__name__}: {exc}") from exc
            for entry_id, fields in batch:
                if entry_id != cursor:
                    yield entry_id, json.loads(fields["record"]), fields["prev"], fields["hash"]
            if len(batch) < 500:
                return
            cursor = batch[-1][0]

    async def head(self) -> str | None:
        newest = cast(list[tuple[str, dict[str, str]]], self._reader.xrevrange(STREAM, count=1))
        return newest[0][0] if newest else None

    async def records_after(self, seq: str | None, limit: int = 500) -> list[dict[str, Any]]:
        start = f"({seq}" if seq else "-"
        batch = cast(list[tuple[str, dict[str, str]]], self._reader.xrange(STREAM, min=start, count=limit))
        return [{"seq": entry_id, **json.loads(f["record"]), "hash": f["hash"]} for entry_id, f in batch]

    async def verify(self) -> str | None:
        return first_break(self._records())

    async def delete_before(self, seq: str) -> int:
        """XTRIM MINID: entries with smaller ids go; `seq` (an entry id) stays."""
        return int(await self._client.xtrim(STREAM, minid=seq, approximate=False))

    async def close(self) -> None:
        await self._client.aclose()
        self._reader.close()
