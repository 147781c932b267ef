"""Redis clients for a ledger URL's settings: one Redis, a Sentinel-managed primary, or a Cluster. Behind Sentinel
every new connection asks Sentinel for the primary, and none is made while Sentinel knows no healthy primary
(MasterNotFoundError, a ConnectionError: the ledger answers LedgerUnavailable, so checks fail closed)."""

from __future__ import annotations

from typing import Any

import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel

from satgate.ledger.redis_url import RedisSettings


def _sentinel_timeouts(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in {"socket_timeout", "socket_connect_timeout"}}


def async_client(settings: RedisSettings, **options: Any) -> Redis | RedisCluster:
    if settings.sentinels:
        sentinel = Sentinel(list(settings.sentinels), sentinel_kwargs=_sentinel_timeouts(options))
        return sentinel.master_for(settings.service, password=settings.password, db=settings.db, **options)
    if settings.cluster:
        return RedisCluster.from_url(settings.client_url, **options)
    return Redis.from_url(settings.client_url, **options)


def sync_client(settings: RedisSettings, **options: Any) -> redis.Redis | redis.RedisCluster:
    if settings.sentinels:
        sentinel = redis.sentinel.Sentinel(list(settings.sentinels), sentinel_kwargs=_sentinel_timeouts(options))
        return sentinel.master_for(settings.service, password=settings.password, db=settings.db, **options)
    if settings.cluster:
        return redis.RedisCluster.from_url(settings.client_url, **options)
    return redis.Redis.from_url(settings.client_url, **options)
