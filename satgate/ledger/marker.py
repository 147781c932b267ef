"""The ledger marker (SPEC v2: a lost ledger never fails open). Only `satgate ledger init` writes it; a store without
it — a deleted or emptied SQLite file, a wrong path, a Redis (or one Redis Cluster master) restarted empty — is
refused, because its empty budgets and revocation lists would otherwise read as "nothing spent, nothing revoked".

On Redis the marker is one key per hash slot (16 384), each named with a hash tag that falls in its slot, so the
debit script checks the marker of the very slot its tenant's keys live in: a master that lost its data lost its
slots' markers, and only the tenants it served are refused."""

from __future__ import annotations

import binascii
import functools
import secrets

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
