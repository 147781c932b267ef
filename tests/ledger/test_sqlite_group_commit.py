"""Group commit on the SQLite ledger (SPEC: Ledger): the debits that arrive together share one transaction,
judged in arrival order, none answered before its COMMIT, and a batch that cannot commit spends nothing."""

import asyncio
import os
import secrets

import pytest

from satgate.ledger import Bucket, DebitRequest, Outcome
from tests.ledgers import fresh_ledger


@pytest.fixture
async def ledger(tmp_path):
    store = fresh_ledger(f"sqlite:///{tmp_path}/ledger.db")
    yield store
    await store.close()


def debit(bucket: Bucket, cost: int = 1) -> DebitRequest:
    return DebitRequest("acme", ("t" * 32,), (bucket,), cost, secrets.token_hex(16), attempt=secrets.token_hex(8))


def wal_bytes(ledger) -> int:
    return os.path.getsize(f"{ledger.path}-wal")


async def test_debits_arriving_together_share_one_commit(ledger):
    warm = Bucket(secrets.token_hex(16), 10**6)
    await ledger.debit(debit(warm))  # the loop's connection open, the pages in the WAL once
    before = wal_bytes(ledger)
    results = await asyncio.gather(*(ledger.debit(debit(warm)) for _ in range(64)))
    assert [r.outcome for r in results] == [Outcome.DEBITED] * 64
    assert sorted(r.remaining for r in results) == list(range(10**6 - 65, 10**6 - 1))
    # One commit writes each dirty page once; 64 commits would append ~128 page frames (over 500 KB).
    assert wal_bytes(ledger) - before < 12 * 4096


async def test_a_batch_is_judged_in_arrival_order(ledger):
    shared = Bucket(secrets.token_hex(16), 5)
    first, second, third = await asyncio.gather(
        ledger.debit(debit(shared, 3)), ledger.debit(debit(shared, 3)), ledger.debit(debit(shared, 2))
    )
    assert (first.outcome, first.remaining) == (Outcome.DEBITED, 2)
    assert (second.outcome, second.remaining) == (Outcome.INSUFFICIENT, 2)
    assert (third.outcome, third.remaining) == (Outcome.DEBITED, 0)


async def test_a_debit_cancelled_while_queued_spends_nothing(ledger):
    shared = Bucket(secrets.token_hex(16), 10)
    await ledger.debit(debit(shared))
    kept = asyncio.ensure_future(ledger.debit(debit(shared, 2)))
    gone = asyncio.ensure_future(ledger.debit(debit(shared, 5)))
    await asyncio.sleep(0)  # both queued for the same commit
    gone.cancel()
    assert (await kept).remaining == 7
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await ledger.remaining("acme", (shared,)) == 7


async def test_a_batch_that_cannot_commit_answers_none_and_spends_nothing(ledger):
    shared = Bucket(secrets.token_hex(16), 10)
    await ledger.debit(debit(shared))
    unstorable = Bucket(secrets.token_hex(16), 2**70)  # SQLite integers stop at 2**63: this debit raises
    outcomes = await asyncio.gather(
        ledger.debit(debit(shared, 2)),
        ledger.debit(debit(unstorable)),
        ledger.debit(debit(shared, 3)),
        return_exceptions=True,
    )
    assert all(isinstance(o, Exception) for o in outcomes)
    assert await ledger.remaining("acme", (shared,)) == 9  # the whole transaction rolled back
    assert (await ledger.debit(debit(shared, 4))).remaining == 5  # and the ledger goes on


async def test_with_synchronous_full_every_debit_goes_through_the_writer_thread(tmp_path):
    """FULL fsyncs each commit, so never on the loop: the writer thread batches them instead, just as exactly."""
    from satgate.ledger.initialise import init_ledger_blocking
    from satgate.ledger.sqlite import SqliteLedger

    init_ledger_blocking(f"sqlite:///{tmp_path}/ledger.db")
    ledger = SqliteLedger(tmp_path / "ledger.db", synchronous="FULL")
    shared = Bucket(secrets.token_hex(16), 40)
    results = await asyncio.gather(*(ledger.debit(debit(shared)) for _ in range(50)))
    assert [r.outcome for r in results].count(Outcome.DEBITED) == 40
    assert await ledger.remaining("acme", (shared,)) == 0
    await ledger.close()
