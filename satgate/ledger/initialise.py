"""`satgate ledger init`: write the ledger marker (satgate/ledger/marker.py) into a new store, SQLite or Redis."""

from __future__ import annotations

import asyncio
import concurrent.futures
from urllib.parse import urlsplit

from satgate.ledger.marker import new_marker


async def init_ledger(url: str) -> tuple[str, int]:
    """Write the marker where it is missing. Returns (a description, how many markers were written): 0 means the
    ledger was already initialised. Never clears anything."""
    from satgate.ledger.url import redis_settings, sqlite_path, validate_ledger_url  # noqa: PLC0415 - stores load lazily

    validate_ledger_url(url)
    if urlsplit(url).scheme == "sqlite":
        from satgate.ledger.sqlite_schema import initialise  # noqa: PLC0415

        path, _options = sqlite_path(url)
        return str(path), int(initialise(path, new_marker()))
    client_url, cluster, _timeout, _connections = redis_settings(url)
    return await write_markers(client_url, cluster=cluster, marker=new_marker())


async def write_markers(client_url: str, *, cluster: bool, marker: str) -> tuple[str, int]:
    """`satgate ledger init` on Redis: set every slot's marker where it is missing (SET NX), never clear."""
    from redis.asyncio import Redis  # noqa: PLC0415
    from redis.asyncio.cluster import RedisCluster  # noqa: PLC0415
    from redis.exceptions import RedisError  # noqa: PLC0415

    from satgate.ledger.base import LedgerUnavailable  # noqa: PLC0415
    from satgate.ledger.marker import all_redis_marker_keys  # noqa: PLC0415
    from satgate.urls import display_url  # noqa: PLC0415

    client: Redis | RedisCluster = (
        RedisCluster.from_url(client_url, decode_responses=True)
        if cluster
        else Redis.from_url(client_url, decode_responses=True)
    )
    try:
        pipe = client.pipeline(transaction=False)
        for key in all_redis_marker_keys():
            pipe.set(key, marker, nx=True)
        written = sum(1 for ok in await pipe.execute() if ok)
    except (RedisError, OSError) as exc:
        raise LedgerUnavailable(f"ledger: cannot initialise Redis at {display_url(client_url)}: {exc}") from exc
    finally:
        await client.aclose()
    return display_url(client_url), written


def init_ledger_blocking(url: str) -> tuple[str, int]:
    """init_ledger from synchronous code, with or without a running event loop (in its own thread)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, init_ledger(url)).result()
