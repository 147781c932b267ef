"""Budget changes (SPEC: Control plane — budget change): a top-up or a cut of a bucket's limit, honoured by the next
debit, never below what is spent; the same on every backend."""

import asyncio
import secrets

from satgate.ledger import Outcome
from tests.ledger.test_conformance import bucket, debit


async def test_top_up_lets_the_next_debit_through(ledger):
    b = bucket(2)
    for _ in range(2):
        await ledger.debit(debit([b]))
    assert (await ledger.debit(debit([b]))).outcome is Outcome.INSUFFICIENT
    change = await ledger.adjust("acme", b, 3, secrets.token_hex(8))
    assert (change.applied, change.remaining) == (True, 3)
    assert (await ledger.debit(debit([b]))).remaining == 2
    assert await ledger.remaining("acme", (b,)) == 2


async def test_cut_never_goes_below_what_is_spent(ledger):
    b = bucket(10)
    await ledger.debit(debit([b], cost=7))
    refused = await ledger.adjust("acme", b, -4, secrets.token_hex(8))
    assert (refused.applied, refused.remaining) == (False, 3)
    assert await ledger.remaining("acme", (b,)) == 3  # a refused cut moved nothing
    cut = await ledger.adjust("acme", b, -3, secrets.token_hex(8))
    assert (cut.applied, cut.remaining) == (True, 0)
    assert (await ledger.debit(debit([b]))).outcome is Outcome.INSUFFICIENT


async def test_change_on_a_bucket_never_debited(ledger):
    b = bucket(5)
    assert (await ledger.adjust("acme", b, -5, secrets.token_hex(8))).remaining == 0
    assert (await ledger.debit(debit([b]))).outcome is Outcome.INSUFFICIENT
    assert (await ledger.adjust("acme", b, -1, secrets.token_hex(8))).applied is False


async def test_change_touches_only_its_tenant_and_bucket(ledger):
    b, other = bucket(5), bucket(5)
    await ledger.adjust("acme", b, 10, secrets.token_hex(8))
    assert await ledger.remaining("acme", (other,)) == 5
    assert await ledger.remaining("globex", (b,)) == 5
    assert await ledger.remaining("acme", (b,)) == 15


async def test_cut_racing_debits_never_overspends(ledger):
    """A cut and a burst of debits in any order: what was debited plus what remains is the new limit."""
    b = bucket(50)
    cut = ledger.adjust("acme", b, -20, secrets.token_hex(8))
    results = await asyncio.gather(cut, *(ledger.debit(debit([b])) for _ in range(60)))
    change, debits = results[0], results[1:]
    debited = sum(r.outcome is Outcome.DEBITED for r in debits)
    remaining = await ledger.remaining("acme", (b,))
    assert debited + remaining == (30 if change.applied else 50)
    assert debited <= 50


async def test_remaining_each_reads_every_bucket_apart(ledger):
    buckets = [bucket(5), bucket(3), bucket(10)]
    await ledger.debit(debit([buckets[0], buckets[1]], cost=2))
    await ledger.adjust("acme", buckets[2], -4, secrets.token_hex(8))
    assert await ledger.remaining_each("acme", tuple(buckets)) == [3, 1, 6]
    assert await ledger.remaining_each("globex", tuple(buckets)) == [5, 3, 10]
    assert await ledger.remaining_each("acme", ()) == []


async def test_revoked_each_answers_for_every_id(ledger):
    await ledger.revoke("acme", "b" * 32)
    assert await ledger.revoked_each("acme", ("a" * 32, "b" * 32)) == [False, True]
    assert await ledger.revoked_each("globex", ("b" * 32,)) == [False]
