"""Both audit stores keep one verifiable chain; Redis writers racing for the head still produce one."""

import asyncio
import json

import pytest
import redis as redis_sync

from satgate.audit import GENESIS, AuditEvent, chain_hash, open_audit_log
from satgate.audit.redis import HEAD, STREAM


@pytest.fixture(params=["sqlite", "redis"])
async def audit_log(request, tmp_path):
    if request.param == "sqlite":
        log = open_audit_log(f"sqlite:///{tmp_path}/ledger.db", tmp_path / "audit.db")
    else:
        server = request.getfixturevalue("redis_server")
        server.cli("flushall")
        log = open_audit_log(server.url, tmp_path / "unused.db")
    yield request.param, log
    await log.close()


async def test_appends_form_a_verifiable_chain(audit_log):
    _, log = audit_log
    start = log.head()
    hashes = [await log.append(AuditEvent(type="exchange", tenant="acme", actor=f"a{i}")) for i in range(5)]
    records = list(log.records())
    assert [r[1]["actor"] for r in records] == ["a0", "a1", "a2", "a3", "a4"]
    assert [r[3] for r in records] == hashes
    assert records[0][2] == GENESIS and records[1][2] == hashes[0]
    assert log.verify() is None
    assert start is None
    assert [r["hash"] for r in log.records_after(None)] == hashes
    assert [r["actor"] for r in log.records_after(records[2][0])] == ["a3", "a4"]
    assert log.head() == records[-1][0]


async def test_deleted_and_forged_entries_are_detected(audit_log, tmp_path, request):
    kind, log = audit_log
    for i in range(4):
        await log.append(AuditEvent(type="revoke", tenant="acme", actor=f"a{i}"))
    ids = [r[0] for r in log.records()]
    if kind == "sqlite":
        import sqlite3

        db = sqlite3.connect(tmp_path / "audit.db")
        db.execute("DELETE FROM audit WHERE seq = ?", (ids[1],))
        db.commit()
        assert log.verify() == ids[2]
    else:
        client = redis_sync.Redis(port=request.getfixturevalue("redis_server").port, decode_responses=True)
        client.xdel(STREAM, ids[1])
        assert log.verify() == ids[2]
        client.xadd(STREAM, {"record": json.dumps({"type": "forged"}), "prev": "x", "hash": "y"})
        assert log.verify() == ids[2]


async def test_racing_redis_writers_keep_one_chain(redis_server, tmp_path):
    redis_server.cli("flushall")
    writers = [open_audit_log(redis_server.url, tmp_path / "x.db") for _ in range(3)]
    await asyncio.gather(
        *(w.append(AuditEvent(type="exchange", actor=f"w{n}-{i}")) for i in range(20) for n, w in enumerate(writers))
    )
    records = list(writers[0].records())
    assert len(records) == 60
    assert writers[0].verify() is None
    prev = GENESIS
    for _id, record, record_prev, digest in records:
        assert record_prev == prev and chain_hash(prev, record) == digest
        prev = digest
    assert redis_sync.Redis(port=redis_server.port, decode_responses=True).get(HEAD) == prev
    for writer in writers:
        await writer.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_append_once_lets_one_writer_of_many_through_per_window(kind, tmp_path, request):
    from satgate.audit import Once

    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        server.cli("flushall")
        url = server.url
    else:
        url = f"sqlite:///{tmp_path}/ledger.db"
    # two writers with their own connections, as two authz processes have
    log, other = (open_audit_log(url, tmp_path / "audit.db") for _ in range(2))
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
        assert len(list(log.records())) == 3 and log.verify() is None
    finally:
        await log.close()
        await other.close()
