"""Limits the ledger holds (SPEC v2.2, identity budgets): the Mint sets a windowed bucket's limit in the store, the
token carries none, and every store keeps it in the same atomic step as the debits — on SQLite, Redis and Redis
Cluster alike."""

import asyncio
import secrets

import pytest

from satgate.ledger import Bucket, Outcome
from tests.ledger.test_windows import HOUR, T0, at


def identity_bucket() -> Bucket:
    return Bucket(secrets.token_hex(16), 0, HOUR)  # as the verifier reads a budget_bucket caveat: no limit of its own


async def test_a_bucket_without_a_limit_pays_nothing(ledger):
    bucket = identity_bucket()
    assert (await ledger.debit(at(T0, [bucket]))).outcome is Outcome.INSUFFICIENT


async def test_the_limit_set_is_the_limit_and_a_change_keeps_what_was_spent(ledger):
    bucket = identity_bucket()
    assert await ledger.set_limit("acme", bucket, 5)
    outcomes = [(await ledger.debit(at(T0, [bucket]))).outcome for _ in range(6)]
    assert outcomes == [Outcome.DEBITED] * 5 + [Outcome.INSUFFICIENT]
    await ledger.set_limit("acme", bucket, 8)  # raised: 3 more in this window, the 5 spent stay spent
    assert await ledger.remaining("acme", (bucket,), at=T0) == 3
    await ledger.set_limit("acme", bucket, 2)  # cut below what was spent: nothing left, never negative
    assert await ledger.remaining("acme", (bucket,), at=T0) == 0
    assert (await ledger.debit(at(T0, [bucket]))).outcome is Outcome.INSUFFICIENT
    assert await ledger.remaining("acme", (bucket,), at=T0 + 3600) == 2  # the next window, at the new limit


async def test_if_unset_never_overwrites_a_limit(ledger):
    bucket = identity_bucket()
    assert await ledger.set_limit("acme", bucket, 4, if_unset=True)
    assert not await ledger.set_limit("acme", bucket, 1000, if_unset=True)  # an older token's exchange, say
    assert await ledger.remaining("acme", (bucket,), at=T0) == 4


async def test_concurrent_debits_never_pass_the_limit_the_ledger_holds(ledger):
    bucket = identity_bucket()
    await ledger.set_limit("acme", bucket, 10)
    results = await asyncio.gather(*(ledger.debit(at(T0, [bucket])) for _ in range(40)))
    assert sum(r.outcome is Outcome.DEBITED for r in results) == 10


async def test_thresholds_are_fractions_of_the_limit_the_ledger_holds(ledger):
    bucket = identity_bucket()
    await ledger.set_limit("acme", bucket, 10)
    crossed = []
    for _ in range(10):
        crossed += (await ledger.debit(at(T0, [bucket], thresholds=(800, 1000)))).crossed
    assert [(c.permille, c.limit) for c in crossed] == [(800, 10), (1000, 10)]


async def test_a_lifetime_bucket_is_refused(ledger):
    with pytest.raises(ValueError, match="windowed"):
        await ledger.set_limit("acme", Bucket(secrets.token_hex(16), 5), 5)


async def test_balances_name_a_windowed_buckets_limit_now_and_no_lifetime_limit(ledger):
    bucket, lifetime = identity_bucket(), Bucket(secrets.token_hex(16), 9)
    await ledger.set_limit("acme", bucket, 12)
    await ledger.debit(at(T0, [bucket, lifetime], cost=2))
    assert await ledger.balances_each("acme", (bucket, lifetime), at=T0) == [(10, 12), (7, None)]
    await ledger.adjust("acme", bucket, -4, secrets.token_hex(8), at=T0)  # a cut for this identity alone
    assert (await ledger.balances_each("acme", (bucket,), at=T0)) == [(6, 8)]


async def test_after_a_cut_the_alerts_fire_at_the_new_limit_and_name_it(ledger):
    """1000 cut to 11 with 4 spent: 80 % of 11 is crossed at 9 and 100 % at 11, each naming 11."""
    bucket = identity_bucket()
    await ledger.set_limit("acme", bucket, 1000)
    for _ in range(4):
        await ledger.debit(at(T0, [bucket], thresholds=(800, 1000)))
    await ledger.set_limit("acme", bucket, 11)
    crossed = []
    for _ in range(8):
        crossed += [
            (c.permille, c.limit) for c in (await ledger.debit(at(T0, [bucket], thresholds=(800, 1000)))).crossed
        ]
    assert crossed == [(800, 11), (1000, 11)]
