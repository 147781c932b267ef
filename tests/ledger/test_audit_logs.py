"""Every audit store keeps one verifiable chain: SQLite, the Redis Stream, and the control plane's database
(SQLite and PostgreSQL) — writers racing for the head, in one process or in three, still produce one."""

import asyncio
import json
import sys
import time

import pytest
import redis as redis_sync
from sqlalchemy import text

from satgate.audit import GENESIS, AuditEvent, Once, chain_hash, open_audit_log
from satgate.audit.redis import HEAD, STREAM
from satgate.audit.sql import SqlAuditLog
from tests.ledger.audit_stores import KINDS, control_plane, opened


async def test_appends_form_a_verifiable_chain(audit_log):
    _, log, _ = audit_log
    start = await log.head()
    hashes = [await log.append(AuditEvent(type="exchange", tenant="acme", actor=f"a{i}")) for i in range(5)]
    records = await log.records()
    assert [r[1]["actor"] for r in records] == ["a0", "a1", "a2", "a3", "a4"]
    assert [r[3] for r in records] == hashes
    assert records[0][2] == GENESIS and records[1][2] == hashes[0]
    assert await log.verify() is None
    assert start is None
    assert [r["hash"] for r in await log.records_after(None)] == hashes
    assert [r["actor"] for r in await log.records_after(records[2][0])] == ["a3", "a4"]
    assert await log.head() == records[-1][0]


async def test_deleted_and_forged_entries_are_detected(audit_log, tmp_path, request):
    kind, log, _ = audit_log
    for i in range(4):
        await log.append(AuditEvent(type="revoke", tenant="acme", actor=f"a{i}"))
    ids = [r[0] for r in await log.records()]
    if kind == "sqlite":
        import sqlite3

        db = sqlite3.connect(tmp_path / "audit.db")
        db.execute("DELETE FROM audit WHERE seq = ?", (ids[1],))
        db.commit()
        assert await log.verify() == ids[2]
    elif kind == "redis":
        client = redis_sync.Redis(port=request.getfixturevalue("redis_server").port, decode_responses=True)
        client.xdel(STREAM, ids[1])
        assert await log.verify() == ids[2]
        client.xadd(STREAM, {"record": json.dumps({"type": "forged"}), "prev": "x", "hash": "y"})
        assert await log.verify() == ids[2]
    else:
        async with log._engine.begin() as db:  # whoever holds the database's credentials
            edited = json.dumps({**(await log.records())[2][1], "actor": "someone-else"}, sort_keys=True)
            await db.execute(text("UPDATE audit SET record = :r WHERE seq = :s"), {"r": edited, "s": ids[2]})
        assert await log.verify() == ids[2]
        async with log._engine.begin() as db:
            await db.execute(text("DELETE FROM audit WHERE seq = :s"), {"s": ids[1]})
        assert await log.verify() == ids[2]


@pytest.mark.parametrize("kind", ["redis", "sql-sqlite", "sql-postgresql"])
async def test_racing_writers_keep_one_chain(kind, tmp_path, request):
    new_writer, _ = await opened(kind, request, tmp_path)
    writers = [new_writer() for _ in range(3)]
    await asyncio.gather(
        *(w.append(AuditEvent(type="exchange", actor=f"w{n}-{i}")) for i in range(20) for n, w in enumerate(writers))
    )
    records = await writers[0].records()
    assert len(records) == 60
    assert await writers[0].verify() is None
    prev = GENESIS
    for _id, record, record_prev, digest in records:
        assert record_prev == prev and chain_hash(prev, record) == digest
        prev = digest
    if kind == "redis":
        assert (
            redis_sync.Redis(port=request.getfixturevalue("redis_server").port, decode_responses=True).get(HEAD) == prev
        )
    for writer in writers:
        await writer.close()


WRITER = """
import asyncio, sys, time
from satgate.audit import AuditEvent, open_audit_log

async def main(url, name, start_at):
    log = open_audit_log("sqlite:///unused.db", "unused.db", url)
    await log.head()  # connected before the start, so the three really append at once
    await asyncio.sleep(max(0.0, start_at - time.time()))
    await asyncio.gather(*(log.append(AuditEvent(type="exchange", actor=f"{name}-{i}")) for i in range(40)))
    await log.close()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


async def test_three_writer_processes_on_postgresql_keep_one_chain(tmp_path, request):
    """Three hosts' worth of writers (separate processes, connections and pools) appending at once."""
    url = await control_plane("sql-postgresql", request, tmp_path)
    start_at = str(time.time() + 3)  # after every process has started and connected
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, url, f"host{n}", start_at, cwd=tmp_path)
        for n in range(3)
    ]
    assert [await proc.wait() for proc in procs] == [0, 0, 0]
    log = open_audit_log("sqlite:///unused.db", tmp_path / "unused.db", url)
    assert isinstance(log, SqlAuditLog)  # a PostgreSQL control plane holds the chain
    records = await log.records()
    assert len(records) == 120 and await log.verify() is None
    for n in range(3):  # every writer's records, interleaved with the others'
        mine = {r[1]["actor"] for r in records if r[1]["actor"].startswith(f"host{n}-")}
        assert mine == {f"host{n}-{i}" for i in range(40)}
    await log.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_append_once_lets_one_writer_of_many_through_per_window(kind, tmp_path, request):
    new_writer, _ = await opened(kind, request, tmp_path)
    # two writers with their own connections, as two authz processes have
    log, other = new_writer(), new_writer()
    try:
        once = Once("budget_exhausted:acme:b1", 0.5)
        writers = [log, other] * 5
        results = await asyncio.gather(
            *(w.append(AuditEvent(type="budget_exhausted", actor=f"w{i}"), once=once) for i, w in enumerate(writers))
        )
        assert sum(r is not None for r in results) == 1
        assert await log.append(AuditEvent(type="budget_exhausted"), once=Once("budget_exhausted:acme:b2", 0.5))
        await asyncio.sleep(0.6)  # the window has passed
        assert await other.append(AuditEvent(type="budget_exhausted", actor="later"), once=once) is not None
        assert len(await log.records()) == 3 and await log.verify() is None
    finally:
        await log.close()
        await other.close()
