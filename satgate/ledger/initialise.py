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
    from satgate.ledger.redis import write_markers  # noqa: PLC0415

    client_url, cluster, _timeout, _connections = redis_settings(url)
    return await write_markers(client_url, cluster=cluster, marker=new_marker())


def init_ledger_blocking(url: str) -> tuple[str, int]:
    """init_ledger from synchronous code, with or without a running event loop (in its own thread)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, init_ledger(url)).result()
