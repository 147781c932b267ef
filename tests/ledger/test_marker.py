"""A lost ledger never fails open (SPEC v2): a store without the marker `satgate ledger init` writes is refused —
the SQLite file deleted, emptied, replaced or at a wrong path, Redis restarted without its data, one Redis Cluster
master restarted empty — while an intact file or a Redis restarted from its AOF keeps working."""

import asyncio
import os
import secrets
import time

import pytest

from satgate.ledger import Bucket, DebitRequest, LedgerUnavailable, Outcome
from satgate.ledger.base import LedgerNotInitialised
from satgate.ledger.initialise import init_ledger
from satgate.ledger.marker import redis_slot
from satgate.ledger.url import open_ledger
from satgate_dev.redis_server import RedisServer
from tests.ledgers import fresh_ledger


def spend(tenant="acme", limit=10, cost=1, bucket="b" * 32) -> DebitRequest:
    return DebitRequest(tenant, ("t" * 32,), (Bucket(bucket, limit),), cost, secrets.token_hex(8))


async def refused(ledger) -> str:
    with pytest.raises(LedgerNotInitialised) as info:
        await ledger.debit(spend())
    with pytest.raises(LedgerNotInitialised):
        await ledger.probe()
    return str(info.value)


# ------------------------------------------------------------------------------------------------- SQLite
async def test_a_missing_file_is_refused_and_never_created(tmp_path):
    ledger = open_ledger(f"sqlite:///{tmp_path}/nowhere/ledger.db")
    assert "satgate ledger init" in await refused(ledger)
    assert not (tmp_path / "nowhere").exists()
    await ledger.close()


async def test_an_emptied_file_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    ledger = fresh_ledger(url)
    assert (await ledger.debit(spend(limit=1))).outcome is Outcome.DEBITED
    await ledger.close()
    os.truncate(tmp_path / "ledger.db", 0)  # truncate -s0 while the server is stopped
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"ledger.db{suffix}").unlink(missing_ok=True)
    reopened = open_ledger(url)
    assert "not an initialised SatGate ledger" in await refused(reopened)
    await reopened.close()


async def test_a_file_deleted_while_open_is_refused_until_restored(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    ledger = fresh_ledger(url)
    assert (await ledger.debit(spend(limit=2))).remaining == 1
    backup = (tmp_path / "ledger.db").read_bytes()
    (tmp_path / "ledger.db").unlink()  # the open connection would otherwise write into a ghost inode
    assert "deleted while open" in await refused(ledger)
    (tmp_path / "ledger.db").write_bytes(backup)  # restored from a backup: the marker comes back with it
    assert (await ledger.debit(spend(limit=2))).outcome is Outcome.DEBITED
    await ledger.close()


async def test_another_sqlite_file_without_the_marker_is_refused(tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    ledger = open_ledger(f"sqlite:///{tmp_path}/other.db")
    await refused(ledger)
    await ledger.close()


async def test_an_intact_file_keeps_its_spend_across_restarts(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    ledger = fresh_ledger(url)
    await ledger.debit(spend(limit=5, cost=2))
    await ledger.close()
    again = open_ledger(url)
    assert (await again.debit(spend(limit=5, cost=2))).remaining == 1
    await again.probe()
    await again.close()


async def test_init_is_idempotent_and_never_clears(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    ledger = fresh_ledger(url)
    await ledger.debit(spend(limit=5, cost=4))
    assert (await init_ledger(url))[1] == 0  # already initialised: nothing written
    assert (await ledger.debit(spend(limit=5, cost=4))).outcome is Outcome.INSUFFICIENT
    await ledger.close()


# -------------------------------------------------------------------------------------------------- Redis
async def test_redis_restarted_without_persistence_is_refused(tmp_path):
    server = RedisServer(tmp_path / "redis").start()  # no AOF: a restart comes back empty
    try:
        ledger = fresh_ledger(server.url)
        assert (await ledger.debit(spend(limit=1))).outcome is Outcome.DEBITED
        server.kill()
        server.start()
        message = await refused(ledger)  # the spent budget would otherwise read as unspent
        assert "Restore it" in message
        await ledger.close()
    finally:
        server.stop()


async def test_redis_restarted_from_its_aof_keeps_working(tmp_path):
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    try:
        ledger = fresh_ledger(server.url)
        await ledger.debit(spend(limit=3, cost=2))
        server.kill()
        server.start()
        await ledger.probe()
        assert (await ledger.debit(spend(limit=3, cost=2))).outcome is Outcome.INSUFFICIENT
        await ledger.close()
    finally:
        server.stop()


async def test_one_cluster_master_restarted_empty_refuses_exactly_its_tenants(redis_cluster):
    for node in redis_cluster:
        node.cli("flushall")
    url = f"redis+cluster://127.0.0.1:{redis_cluster[0].port}"
    ledger = fresh_ledger(url)
    tenants = [f"tenant-{i}" for i in range(24)]
    for tenant in tenants:
        assert (await ledger.debit(spend(tenant=tenant))).outcome is Outcome.DEBITED
    victim = redis_cluster[1]
    lost = {t for t in tenants if victim.cli("cluster", "countkeysinslot", str(redis_slot(t))).strip() != "0"}
    assert lost and lost != set(tenants)
    victim.kill()
    victim.start()  # rejoins with its slots (nodes.conf) and no data
    deadline = time.monotonic() + 20
    while victim.cli("cluster", "info").find("cluster_state:ok") < 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    outcomes = {}
    for tenant in tenants:
        for _ in range(20):  # the client reconnects to the restarted node on its own
            try:
                outcomes[tenant] = (await ledger.debit(spend(tenant=tenant))).outcome
                break
            except LedgerNotInitialised:
                outcomes[tenant] = "refused"
                break
            except LedgerUnavailable:
                await asyncio.sleep(0.2)
    assert {t for t, o in outcomes.items() if o == "refused"} == lost
    assert all(outcomes[t] is Outcome.DEBITED for t in set(tenants) - lost)
    with pytest.raises(LedgerNotInitialised):
        await ledger.probe()
    await ledger.close()
    for node in redis_cluster:  # leave the session's cluster initialised-free and usable for other tests
        node.cli("flushall")


@pytest.mark.parametrize("budgeted", [True, False], ids=["debit", "unbudgeted read"])
async def test_a_marker_removed_while_open_is_refused_on_every_path(tmp_path, budgeted):
    """The unbudgeted read checks the marker in the same statement as revocation: both paths must see it go."""
    import sqlite3

    url = f"sqlite:///{tmp_path}/ledger.db"
    ledger = fresh_ledger(url)
    request = spend() if budgeted else DebitRequest("acme", ("t" * 32,), (), 1, secrets.token_hex(8))
    assert (await ledger.debit(request)).outcome is Outcome.DEBITED  # the loop's connection is open and warm
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("DELETE FROM ledger_meta")
    other.close()
    with pytest.raises(LedgerNotInitialised):
        await ledger.debit(request)
    await ledger.close()
