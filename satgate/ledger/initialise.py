"""`satgate ledger init`: write the ledger marker (satgate/ledger/marker.py) into a new store, SQLite or Redis."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from satgate.ledger.marker import new_marker

if TYPE_CHECKING:
    from satgate.ledger.redis_url import RedisSettings


async def init_ledger(url: str) -> tuple[str, int]:
    """Write the marker where it is missing. Returns (a description, how many markers were written): 0 means the
    ledger was already initialised. Never clears anything."""
    from satgate.ledger.url import redis_settings, sqlite_path, validate_ledger_url  # noqa: PLC0415 - stores load lazily

    validate_ledger_url(url)
    if urlsplit(url).scheme == "sqlite":
        from satgate.ledger.sqlite_schema import initialise  # noqa: PLC0415

        path, _options = sqlite_path(url)
        return str(path), int(initialise(path, new_marker()))
    return await write_markers(redis_settings(url), marker=new_marker())


async def write_markers(settings: RedisSettings, *, marker: str) -> tuple[str, int]:
    """`satgate ledger init` on Redis: set every slot's marker where it is missing (SET NX), never clear."""
    from redis.exceptions import RedisError  # noqa: PLC0415

    from satgate.ledger.base import LedgerUnavailable  # noqa: PLC0415
    from satgate.ledger.marker import all_redis_marker_keys  # noqa: PLC0415
    from satgate.ledger.redis_client import async_client  # noqa: PLC0415
    from satgate.urls import display_url  # noqa: PLC0415

    client = async_client(settings, decode_responses=True)
    try:
        pipe = client.pipeline(transaction=False)
        for key in all_redis_marker_keys():
            pipe.set(key, marker, nx=True)
        written = sum(1 for ok in await pipe.execute() if ok)
    except (RedisError, OSError) as exc:
        where = display_url(settings.client_url)
        raise LedgerUnavailable(f"ledger: cannot initialise Redis at {where}: {exc}") from exc
    finally:
        await client.aclose()
    return display_url(settings.client_url), written


def init_ledger_blocking(url: str) -> tuple[str, int]:
    """init_ledger from synchronous code, with or without a running event loop (in its own thread)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, init_ledger(url)).result()
