"""Ledger rules from the SPEC, identical for every backend."""

import asyncio
import secrets

import pytest

from satgate.ledger import Bucket, DebitRequest, Outcome


def bucket(limit: int) -> Bucket:
    return Bucket(secrets.token_hex(16), limit)


def debit(buckets, cost=1, tenant="acme", ids=("t" * 32,), key=None) -> DebitRequest:
    return DebitRequest(tenant, tuple(ids), tuple(buckets), cost, key)


async def test_debits_until_the_limit_then_refuses(ledger):
    b = bucket(3)
    results = [await ledger.debit(debit([b])) for _ in range(4)]
    assert [r.outcome for r in results] == [Outcome.DEBITED] * 3 + [Outcome.INSUFFICIENT]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert results[-1].charged == 0


async def test_cost_larger_than_remaining_is_refused_without_partial_debit(ledger):
    b = bucket(5)
    assert (await ledger.debit(debit([b], cost=3))).remaining == 2
    refused = await ledger.debit(debit([b], cost=3))
    assert (refused.outcome, refused.remaining) == (Outcome.INSUFFICIENT, 2)
    assert await ledger.remaining("acme", (b,)) == 2


async def test_all_buckets_pay_or_none_do(ledger):
    parent, child = bucket(10), bucket(2)
    assert (await ledger.debit(debit([parent, child], cost=2))).remaining == 0
    refused = await ledger.debit(debit([parent, child], cost=1))
    assert refused.outcome is Outcome.INSUFFICIENT
    assert await ledger.remaining("acme", (parent,)) == 8  # the parent was not charged for the refusal


async def test_children_together_never_exceed_the_parent(ledger):
    parent = bucket(5)
    children = [bucket(4), bucket(4), bucket(4)]
    allowed = 0
    for _ in range(4):
        for child in children:
            if (await ledger.debit(debit([parent, child]))).outcome is Outcome.DEBITED:
                allowed += 1
    assert allowed == 5
    assert await ledger.remaining("acme", (parent,)) == 0


async def test_zero_cost_passes_even_when_exhausted(ledger):
    b = bucket(1)
    await ledger.debit(debit([b]))
    result = await ledger.debit(debit([b], cost=0))
    assert (result.outcome, result.charged, result.remaining) == (Outcome.DEBITED, 0, 0)


async def test_no_budget_means_unlimited(ledger):
    result = await ledger.debit(debit([], cost=7))
    assert (result.outcome, result.charged, result.remaining) == (Outcome.DEBITED, 7, None)


async def test_revoking_any_id_in_the_chain_revokes(ledger):
    token_id, delegation = "a" * 32, "b" * 32
    assert await ledger.revoke("acme", delegation, "leaked")
    assert not await ledger.revoke("acme", delegation)  # already revoked
    result = await ledger.debit(debit([bucket(5)], ids=(token_id, delegation)))
    assert result.outcome is Outcome.REVOKED
    assert (await ledger.debit(debit([bucket(5)], ids=(token_id,)))).outcome is Outcome.DEBITED
    assert await ledger.is_revoked("acme", (token_id, delegation))


async def test_revocation_is_checked_without_a_budget_too(ledger):
    await ledger.revoke("acme", "c" * 32)
    assert (await ledger.debit(debit([], ids=("c" * 32,)))).outcome is Outcome.REVOKED


async def test_revoked_token_charges_nothing(ledger):
    b = bucket(5)
    await ledger.revoke("acme", "d" * 32)
    await ledger.debit(debit([b], ids=("d" * 32,)))
    assert await ledger.remaining("acme", (b,)) == 5


async def test_tenants_are_isolated(ledger):
    shared_id = "e" * 32
    b = Bucket("f" * 32, 1)
    await ledger.revoke("tenant-a", shared_id)
    assert (await ledger.debit(debit([b], tenant="tenant-b", ids=(shared_id,)))).outcome is Outcome.DEBITED
    assert (await ledger.debit(debit([b], tenant="tenant-c"))).outcome is Outcome.DEBITED  # own bucket


async def test_same_request_id_does_not_debit_twice(ledger):
    b = bucket(5)
    first = await ledger.debit(debit([b], cost=2, key="fp:req-1"))
    again = await ledger.debit(debit([b], cost=2, key="fp:req-1"))
    assert (first.replayed, again.replayed) == (False, True)
    assert (again.charged, again.remaining) == (2, 3)
    assert await ledger.remaining("acme", (b,)) == 3
    other = await ledger.debit(debit([b], cost=2, key="fp:req-2"))
    assert other.remaining == 1


async def test_replay_does_not_outlive_revocation(ledger):
    b = bucket(5)
    await ledger.debit(debit([b], ids=("9" * 32,), key="fp:req"))
    await ledger.revoke("acme", "9" * 32)
    assert (await ledger.debit(debit([b], ids=("9" * 32,), key="fp:req"))).outcome is Outcome.REVOKED


async def test_refused_request_is_not_remembered_as_paid(ledger):
    b = bucket(1)
    await ledger.debit(debit([b]))
    assert (await ledger.debit(debit([b], key="fp:x"))).outcome is Outcome.INSUFFICIENT
    assert (await ledger.debit(debit([b], key="fp:x"))).outcome is Outcome.INSUFFICIENT


async def test_concurrent_debits_never_overspend(ledger):
    b = bucket(50)
    results = await asyncio.gather(*(ledger.debit(debit([b])) for _ in range(200)))
    assert sum(r.outcome is Outcome.DEBITED for r in results) == 50
    assert await ledger.remaining("acme", (b,)) == 0


@pytest.mark.parametrize("limit", [1, 10**15])
async def test_limit_extremes(ledger, limit):
    b = bucket(limit)
    assert (await ledger.debit(debit([b], cost=limit))).remaining == 0
