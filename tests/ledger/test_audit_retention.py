"""Audit retention (SPEC: Control plane): pruning removes what is past the retention after a signed checkpoint,
and the retained part still verifies on every store; an edited retained record, records removed without a
checkpoint, or a checkpoint signed with another key all fail verification."""

import json
import sqlite3
import time

import redis as redis_sync
from sqlalchemy import text

from satgate.audit import AuditEvent
from satgate.audit.redis import STREAM
from satgate.audit.retention import prune, verify_retained
from satgate.keyring import Keyring
from satgate.timefmt import format_utc

KEYRING = Keyring.generate("k1")
DAY = 86400


async def fill(log, *, old: int, recent: int) -> None:
    for i in range(old):
        await log.append(
            AuditEvent(type="exchange", tenant="acme", actor=f"old{i}", time=format_utc(time.time() - 100 * DAY))
        )
    for i in range(recent):
        await log.append(AuditEvent(type="exchange", tenant="acme", actor=f"new{i}"))


async def edit(kind, log, seq, request, tmp_path):
    """Change one retained record's content, as someone with the store's credentials could; the seq where the
    chain must break."""
    records = {r[0]: r for r in await log.records()}
    edited = json.dumps({**records[seq][1], "actor": "someone-else"}, sort_keys=True)
    if kind == "sqlite":
        db = sqlite3.connect(tmp_path / "audit.db")
        db.execute("UPDATE audit SET record = ? WHERE seq = ?", (edited, seq))
        db.commit()
        db.close()
    elif kind == "redis":
        # stream entries cannot change in place: taken out and added back edited, at the end
        client = redis_sync.Redis(port=request.getfixturevalue("redis_server").port, decode_responses=True)
        client.xdel(STREAM, seq)
        client.xadd(STREAM, {"record": edited, "prev": records[seq][2], "hash": records[seq][3]})
        order = list(records)
        return order[order.index(seq) + 1]
    else:
        async with log._engine.begin() as db:
            await db.execute(text("UPDATE audit SET record = :r WHERE seq = :s"), {"r": edited, "s": seq})
    return seq


async def test_prune_keeps_the_retained_chain_verifiable(audit_log, request, tmp_path):
    kind, log, _ = audit_log
    await fill(log, old=5, recent=3)
    pruned = await prune(log, KEYRING, retention_days=90)
    assert pruned is not None and pruned.removed == 5
    records = await log.records()
    assert [r[1]["actor"] for r in records] == ["new0", "new1", "new2", "satgate"]
    assert records[-1][1]["type"] == "audit_pruned" and records[-1][1]["details"]["removed"] == 5
    assert await log.verify() is not None  # from genesis it cannot verify: the start is gone
    broken, _ = await verify_retained(log, KEYRING)
    assert broken is None
    assert await prune(log, KEYRING, retention_days=90) is None  # nothing more is old

    breaks_at = await edit(kind, log, records[1][0], request, tmp_path)
    broken, _ = await verify_retained(log, KEYRING)
    assert broken == breaks_at


async def test_removal_without_a_valid_checkpoint_fails(audit_log):
    _kind, log, _ = audit_log
    await fill(log, old=3, recent=3)
    await prune(log, Keyring.generate("k1"), retention_days=90)  # a checkpoint signed with some other key
    broken, records = await verify_retained(log, KEYRING)
    assert broken == records[0][0]
    await log.delete_before(records[1][0])  # and records removed with no checkpoint at all
    broken, records = await verify_retained(log, KEYRING)
    assert broken == records[0][0]


async def test_a_prune_of_everything_leaves_the_checkpoint(audit_log):
    _kind, log, _ = audit_log
    await fill(log, old=4, recent=0)
    assert (await prune(log, KEYRING, retention_days=90)).removed == 4
    records = await log.records()
    assert [r[1]["type"] for r in records] == ["audit_pruned"]
    assert (await verify_retained(log, KEYRING))[0] is None
