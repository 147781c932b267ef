"""The ledger marker (SPEC v2: a lost ledger never fails open). Only `satgate ledger init` writes it; a store without
it — a deleted or emptied SQLite file, a wrong path, a Redis (or one Redis Cluster master) restarted empty — is
refused, because its empty budgets and revocation lists would otherwise read as "nothing spent, nothing revoked".

On Redis the marker is one key per hash slot (16 384), each named with a hash tag that falls in its slot, so the
debit script checks the marker of the very slot its tenant's keys live in: a master that lost its data lost its
slots' markers, and only the tenants it served are refused."""

from __future__ import annotations

import asyncio
import binascii
import concurrent.futures
import functools
import secrets
from urllib.parse import urlsplit

REDIS_SLOTS = 16384


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    """For every slot, the shortest decimal string whose CRC16 (Redis's key hash) falls in it (~50 ms, once)."""
    tags: list[str | None] = [None] * REDIS_SLOTS
    missing, n = REDIS_SLOTS, 0
    while missing:
        text = str(n)
        slot = binascii.crc_hqx(text.encode(), 0) % REDIS_SLOTS
        if tags[slot] is None:
            tags[slot] = text
            missing -= 1
        n += 1
    return tuple(tag for tag in tags if tag is not None)


def redis_slot(tag: str) -> int:
    return binascii.crc_hqx(tag.encode(), 0) % REDIS_SLOTS


def redis_marker_key_for_tenant(tenant: str) -> str:
    """The marker key in the same slot as `sg:{tenant}:…`."""
    return redis_marker_key(_slot_tags()[redis_slot(tenant)])


def redis_marker_key(tag: str) -> str:
    return f"sg:{{{tag}}}:ledger"


def all_redis_marker_keys() -> list[str]:
    return [redis_marker_key(tag) for tag in _slot_tags()]


def new_marker() -> str:
    return secrets.token_hex(16)


async def init_ledger(url: str) -> tuple[str, int]:
    """Write the marker where it is missing. Returns (a description, how many markers were written): 0 means the
    ledger was already initialised. Never clears anything."""
    from satgate.ledger.url import redis_settings, sqlite_path, validate_ledger_url  # noqa: PLC0415

    validate_ledger_url(url)
    if urlsplit(url).scheme == "sqlite":
        from satgate.ledger.sqlite import initialise  # noqa: PLC0415

        path, _options = sqlite_path(url)
        return str(path), int(initialise(path, new_marker()))
    from satgate.ledger.redis import write_markers  # noqa: PLC0415

    client_url, cluster, _timeout, _connections = redis_settings(url)
    return await write_markers(client_url, cluster=cluster, marker=new_marker())


def init_ledger_blocking(url: str) -> tuple[str, int]:
    """init_ledger from synchronous code, with or without a running event loop (in its own thread)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, init_ledger(url)).result()
