"""Nothing is spent for a request the client did not get (SPEC v2): a debit past its deadline spends nothing, a
refund gives back exactly what one debit spent, once, and a debit resent under its id is never paid twice.
Runs on every backend (the `ledger` fixture: SQLite, Redis, Redis Cluster)."""

import asyncio
import secrets
import signal
import time

from satgate.ledger import Bucket, DebitRequest, LedgerUnavailable, Outcome
from satgate_dev.redis_server import RedisServer
from tests.ledgers import fresh_ledger


def bucket(limit: int) -> Bucket:
    return Bucket(secrets.token_hex(16), limit)


def debit(buckets, cost=1, debit_id=None, deadline=None, attempt=None) -> DebitRequest:
    return DebitRequest(
        "acme",
        ("t" * 32,),
        tuple(buckets),
        cost,
        debit_id or secrets.token_hex(16),
        deadline=deadline,
        attempt=attempt or secrets.token_hex(8),
    )


async def test_a_debit_past_its_deadline_spends_nothing(ledger):
    b = bucket(5)
    late = await ledger.debit(debit([b], cost=2, deadline=time.time() - 0.01))
    assert late.outcome is Outcome.EXPIRED
    assert await ledger.remaining("acme", (b,)) == 5
    in_time = await ledger.debit(debit([b], cost=2, deadline=time.time() + 5))
    assert (in_time.outcome, in_time.remaining) == (Outcome.DEBITED, 3)


async def test_a_refund_gives_back_every_bucket_once_and_forgets_the_record(ledger):
    parent, child = bucket(10), bucket(4)
    charged = debit([parent, child], cost=3)
    assert (await ledger.debit(charged)).remaining == 1
    assert await ledger.refund(charged) == 3
    assert await ledger.remaining("acme", (parent,)) == 10
    assert await ledger.remaining("acme", (child,)) == 4
    assert await ledger.refund(charged) == 0  # once
    again = await ledger.debit(charged)  # the record went with the refund: a retry pays again
    assert (again.outcome, again.replayed, again.remaining) == (Outcome.DEBITED, False, 1)


async def test_a_refund_by_another_attempt_gives_nothing_back(ledger):
    b = bucket(10)
    first = debit([b], cost=4, debit_id="same-request")
    await ledger.debit(first)
    retry = debit([b], cost=4, debit_id="same-request")  # a client retry answered from the record
    result = await ledger.debit(retry)
    assert (result.replayed, result.spent) == (True, False)
    assert await ledger.refund(retry) == 0  # it did not pay, so it gets nothing back
    assert await ledger.remaining("acme", (b,)) == 6


async def test_a_refused_or_replayed_debit_is_not_spent(ledger):
    b = bucket(1)
    assert (await ledger.debit(debit([b]))).spent
    refused = await ledger.debit(debit([b]))
    assert (refused.outcome, refused.spent) == (Outcome.INSUFFICIENT, False)


# ------------------------------------------------------------------------------------ Redis paused and resumed
async def test_scripts_queued_while_redis_was_paused_spend_nothing_after_their_deadline(tmp_path):
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    try:
        ledger = fresh_ledger(server.url + "?timeout_ms=200")
        b = bucket(100)
        await ledger.debit(debit([b], cost=0))  # warm the pool and the script
        server.process.send_signal(signal.SIGSTOP)
        try:
            outcomes = await asyncio.gather(
                *(ledger.debit(debit([b], deadline=time.time() + 0.15)) for _ in range(20)), return_exceptions=True
            )
            await asyncio.sleep(0.5)
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert all(isinstance(o, LedgerUnavailable) for o in outcomes)  # answered 503, fail closed
        await asyncio.sleep(0.5)  # the queued scripts run now, past their deadlines; refunds run too
        assert await ledger.remaining("acme", (b,)) == 100  # not one credit for the 20 refused requests
        await ledger.close()
    finally:
        server.stop()


async def test_pooled_connections_that_idled_through_a_restart_do_not_fail_checks(tmp_path):
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    try:
        ledger = fresh_ledger(server.url)
        b = bucket(1000)
        await asyncio.gather(*(ledger.debit(debit([b])) for _ in range(20)))  # 20 pooled connections
        server.kill()
        server.start()
        results = await asyncio.gather(*(ledger.debit(debit([b])) for _ in range(20)), return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert await ledger.remaining("acme", (b,)) == 960
        await ledger.close()
    finally:
        server.stop()
