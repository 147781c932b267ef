"""The control-plane store's contract, on SQLite and on a real private PostgreSQL alike."""

import asyncio
import time

import pytest
from sqlalchemy.exc import IntegrityError

from satgate.control_plane.store import ControlPlaneStore, DelegationRecord


def step(delegation_id: str, parent: str | None, *, tenant: str = "acme", token_id: str = "t" * 32):
    return DelegationRecord(
        tenant=tenant,
        delegation_id=delegation_id,
        token_id=token_id,
        parent_delegation_id=parent,
        created_at=time.time(),
        actor=parent or token_id,
        label=f"step {delegation_id}",
        budget_credits=10**12,  # past 32 bits: budgets are 64-bit
        scopes="api:read",
        expires_at="2030-01-01T00:00:00Z",
    )


async def test_a_delegation_is_listed_under_its_token_and_read_back_whole(store):
    record = step("d1", None)
    await store.record_delegation(record)
    assert await store.delegations("acme", "t" * 32) == [record]
    assert await store.delegations("other", "t" * 32) == []


async def test_the_subtree_is_the_delegation_and_everything_below_it_in_order(store):
    chain = [step("d0", None)] + [step(f"d{i}", f"d{i - 1}") for i in range(1, 12)]
    sibling = step("s1", "d0")
    for record in [*chain, sibling]:
        await store.record_delegation(record)
    assert [r.delegation_id for r in await store.subtree("acme", "d5")] == [f"d{i}" for i in range(5, 12)]
    assert {r.delegation_id for r in await store.subtree("acme", "d0")} == {*(f"d{i}" for i in range(12)), "s1"}
    assert await store.subtree("acme", "missing") == []


async def test_a_subtree_never_crosses_tenants(store):
    await store.record_delegation(step("d1", None, tenant="acme"))
    await store.record_delegation(step("d2", "d1", tenant="globex"))  # same parent id, another tenant
    assert [r.delegation_id for r in await store.subtree("acme", "d1")] == ["d1"]
    assert await store.subtree("globex", "d1") == []


async def test_a_delegation_id_is_recorded_once(store):
    await store.record_delegation(step("d1", None))
    with pytest.raises(IntegrityError):
        await store.record_delegation(step("d1", None))


async def test_revoking_a_policy_is_idempotent_seen_at_once_and_per_tenant(store):
    assert not await store.is_policy_revoked("acme", "ci")
    assert await store.revoke_policy("acme", "ci", "leaked") is True
    assert await store.revoke_policy("acme", "ci", "again") is False
    assert await store.is_policy_revoked("acme", "ci")
    assert await store.revoked_policies("acme") == frozenset({"ci"})
    assert not await store.is_policy_revoked("globex", "ci")  # another tenant's "ci" is another policy
    assert await store.revoked_policies("globex") == frozenset()


async def test_a_one_time_credential_is_accepted_once(store):
    assert await store.first_use(b"sig-1", time.time() + 60) is True
    assert await store.first_use(b"sig-1", time.time() + 60) is False
    assert await store.first_use(b"sig-2", time.time() + 60) is True


async def test_an_expired_one_time_credential_is_swept(store):
    assert await store.first_use(b"old", time.time() - 1) is True  # already past: the next call sweeps it
    assert await store.first_use(b"other", time.time() + 60) is True
    assert await store.first_use(b"old", time.time() + 60) is True


async def test_racing_copies_of_a_one_time_credential_pass_once(control_plane_url):
    """Two replicas (two engines, two connection pools) and 16 copies at once: exactly one exchange."""
    replicas = [await ControlPlaneStore.open(control_plane_url) for _ in range(2)]
    try:
        outcomes = await asyncio.gather(*(replicas[i % 2].first_use(b"raced", time.time() + 60) for i in range(16)))
    finally:
        for replica in replicas:
            await replica.close()
    assert outcomes.count(True) == 1


async def test_replicas_share_the_tree_and_the_revocations(control_plane_url):
    one, two = [await ControlPlaneStore.open(control_plane_url) for _ in range(2)]
    try:
        await one.record_delegation(step("d1", None))
        await two.record_delegation(step("d2", "d1"))
        assert [r.delegation_id for r in await two.subtree("acme", "d1")] == ["d1", "d2"]
        await two.revoke_policy("acme", "ci", "leaked")
        assert await one.is_policy_revoked("acme", "ci")
    finally:
        await one.close()
        await two.close()
