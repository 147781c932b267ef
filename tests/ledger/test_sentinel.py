"""Redis failover behind Sentinel: a real primary, replica and redis-sentinel on loopback, the primary killed with
SIGKILL. Redis replicates asynchronously, so a debit the primary acknowledged before its replica had it dies with
the primary; with wait_replicas (the default behind Sentinel) no debit is acknowledged until a replica holds it,
so failover loses nothing acknowledged — and while no primary is known every call fails closed."""

import asyncio
import secrets
import time

import pytest
import redis

from satgate.audit import AuditEvent
from satgate.audit.redis import STREAM, RedisStreamAuditLog
from satgate.ledger import Bucket, DebitRequest, LedgerUnavailable, Outcome
from satgate.ledger.redis_keys import bucket_key
from satgate_dev.devstack import LOOPBACK
from satgate_dev.redis_sentinel import SentinelGroup
from tests.ledgers import fresh_ledger

LIMIT = 400
BUCKET = Bucket("5e" * 16, LIMIT)


@pytest.fixture
def group(tmp_path):
    started = SentinelGroup(tmp_path / "sentinel").start()
    yield started
    started.stop()


def debit(debit_id: str | None = None, *, seconds: float = 1.0) -> DebitRequest:
    return DebitRequest(
        "acme",
        ("a" * 32,),
        (BUCKET,),
        1,
        debit_id or secrets.token_hex(16),
        deadline=time.time() + seconds,
        attempt=secrets.token_hex(8),
    )


def spent_on(server) -> int:
    return int(server.cli("get", bucket_key("acme", BUCKET.bucket_id)).strip() or 0)


async def test_debits_go_to_the_primary_sentinel_names_and_are_on_the_replica_when_acknowledged(group):
    # Where the writes go, not how fast: a per-call bound a loaded 2-core machine keeps (the shipped 250 ms gives
    # WAIT 125 ms, which a replica descheduled for a moment misses — a refusal, correct but not this test's subject).
    ledger = fresh_ledger(group.url("?timeout_ms=2000"))
    try:
        for _ in range(20):
            assert (await ledger.debit(debit())).outcome is Outcome.DEBITED
        assert await ledger.revoke("acme", "b" * 32)
        assert spent_on(group.primary) == spent_on(group.replica) == 20  # WAIT: each was on the replica first
        assert group.replica.cli("sismember", "sg:{acme}:revoked:ids", "b" * 32).strip() == "1"
    finally:
        await ledger.close()


async def test_audit_entries_behind_sentinel_are_on_the_replica_when_appended(group):
    log = RedisStreamAuditLog(group.url())
    try:
        for i in range(5):
            await log.append(AuditEvent(type="revoke", tenant="acme", actor=f"a{i}"))
        assert group.replica.cli("xlen", STREAM).strip() == "5"
        assert await log.verify() is None
        group.replica.pause()  # no replica can take the next entry: refused, not acknowledged
        with pytest.raises(LedgerUnavailable, match="replica"):
            await log.append(AuditEvent(type="revoke", tenant="acme", actor="lagged"))
        group.replica.resume()
    finally:
        await log.close()


async def test_an_audit_append_waits_out_a_replica_descheduled_for_a_moment(group):
    """A busy machine deschedules the replica (or stalls its fsync) for a few hundred ms: a control-plane write
    is not on the check's latency budget, so it waits that out instead of failing the admin action."""
    log = RedisStreamAuditLog(group.url())
    try:
        await log.append(AuditEvent(type="revoke", tenant="acme", actor="before"))
        group.replica.pause()
        asyncio.get_running_loop().call_later(0.3, group.replica.resume)
        await log.append(AuditEvent(type="revoke", tenant="acme", actor="while-descheduled"))
        assert group.replica.cli("xlen", STREAM).strip() == "2"
    finally:
        group.replica.resume()
        await log.close()


async def test_with_no_primary_known_every_call_fails_closed(group):
    ledger = fresh_ledger(group.url())
    try:
        assert (await ledger.debit(debit())).outcome is Outcome.DEBITED
        group.primary.kill()
        group.replica.kill()
        await asyncio.to_thread(group.wait_until, lambda: group.sentinel.primary() is None, 10)
        for call in (
            ledger.debit(debit()),
            ledger.revoke("acme", "c" * 32),
            ledger.is_revoked("acme", ("a" * 32,)),
            ledger.remaining("acme", (BUCKET,)),
        ):
            with pytest.raises(LedgerUnavailable):
                await call
    finally:
        await ledger.close()


def fall_behind(group: SentinelGroup) -> None:
    """Make the replica lag: paused (SIGSTOP), with more replication traffic queued for it than the kernel's
    socket buffers hold, so the next writes wait in the primary's own memory — and die with it."""
    group.replica.pause()
    primary = redis.Redis(host=LOOPBACK, port=group.primary.port)
    pipe = primary.pipeline(transaction=False)
    for i in range(32):
        pipe.set(f"backlog:{i}", b"x" * 2**20)
    pipe.execute()
    primary.close()


async def lagging_replica_failover(group: SentinelGroup, options: str) -> tuple[bool, int]:
    """One debit sent while the replica lags, then the primary killed and the replica promoted: (was the debit
    acknowledged, what the new primary says was spent)."""
    ledger = fresh_ledger(group.url(options))
    try:
        fall_behind(group)
        try:
            acknowledged = (await ledger.debit(debit("lagged"))).outcome is Outcome.DEBITED
        except LedgerUnavailable:
            acknowledged = False
        group.primary.kill()
        group.replica.resume()
        await asyncio.to_thread(group.wait_until, lambda: group.sentinel.primary() == group.replica.port, 30)
        return acknowledged, spent_on(group.replica)
    finally:
        await ledger.close()


async def test_without_wait_a_debit_acknowledged_before_the_replica_had_it_is_lost_in_failover(group):
    """What wait_replicas=0 risks: the acknowledged debit is gone, and so is its record — its resend spends again."""
    acknowledged, spent = await lagging_replica_failover(group, "?wait_replicas=0")
    assert acknowledged and spent == 0
    ledger = fresh_ledger(group.url("?wait_replicas=0"))
    try:
        resent = await ledger.debit(debit("lagged"))
        assert resent.outcome is Outcome.DEBITED and not resent.replayed  # applied twice, from the client's side
    finally:
        await ledger.close()


async def test_with_wait_that_debit_is_refused_instead_and_nothing_acknowledged_is_lost(group):
    acknowledged, spent = await lagging_replica_failover(group, "")
    assert not acknowledged and spent == 0


async def test_primary_killed_under_load_loses_no_acknowledged_debit_and_overspends_nothing(group):
    """Sixteen clients spend one bucket down to zero while the primary is killed, Sentinel promotes the replica
    and the old primary rejoins as its replica (restarted from its AOF). Debits whose answer was lost are refunded
    once their deadline passed; at the end the credits spent are exactly the credits acknowledged."""
    ledger = fresh_ledger(group.url("?timeout_ms=250"))
    acknowledged = refused = unavailable = 0

    async def client() -> None:
        nonlocal acknowledged, refused, unavailable
        give_up = time.monotonic() + 90
        while time.monotonic() < give_up:
            try:
                result = await ledger.debit(debit(seconds=0.5))
            except LedgerUnavailable:
                unavailable += 1
                await asyncio.sleep(0.02)
                continue
            if result.outcome is Outcome.INSUFFICIENT:
                refused += 1
                return
            acknowledged += result.spent

    try:
        clients = [asyncio.create_task(client()) for _ in range(16)]
        while acknowledged < LIMIT // 3:
            await asyncio.sleep(0.01)
        old, no_primary = await asyncio.to_thread(group.kill_primary)
        await asyncio.to_thread(group.rejoin, old)
        await asyncio.gather(*clients)
        await ledger._refunds.drain(30)  # debits whose answer was lost are refunded once their deadline passed
    finally:
        await ledger.close()
    print(f"\nfailover: {no_primary:.1f} s without a primary, {unavailable} calls refused 503 meanwhile")
    assert refused == 16, "every client ran the bucket down"
    assert unavailable > 0, "the kill landed under load"
    current = group.server(group.sentinel.primary())
    assert current is group.replica
    assert acknowledged == spent_on(current) <= LIMIT  # none lost, none spent unacknowledged, none beyond
