"""Two authz worker processes (SO_REUSEPORT) behind a real Envoy, sharing one SQLite ledger: the load reaches
both, and thousands of concurrent requests never overspend the budget."""

import asyncio

import pytest

from satgate.keyring import load_keyring
from satgate.ledger.url import open_ledger
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier
from satgate_dev.devstack import Stack, StackPorts

from .conftest import burst, decision_pids

pytestmark = pytest.mark.e2e


def test_thousands_of_concurrent_requests_spend_exactly_the_budget(tmp_path):
    stack = Stack(
        tmp_path / "stack", StackPorts.free(), authz_workers=2, config_overrides={"authz": {"decision_log": "all"}}
    )
    with stack:
        keyring = load_keyring(stack.state_dir / "keyring.json")
        token = mint(keyring, "acme", [("scope", "api:*"), ("budget", "500")]).token
        # SO_REUSEPORT hashes each connection to a worker; 256 concurrent streams make Envoy open ~16, so all
        # landing on one worker has odds of about 2**-15.
        statuses = asyncio.run(burst(stack.url, token, 2000, 256))
    assert statuses.count(200) == 500
    assert statuses.count(402) == 1500
    bucket = TokenVerifier(keyring).verify(token).buckets[0]
    assert asyncio.run(open_ledger(f"sqlite:///{stack.state_dir}/ledger.db").remaining("acme", (bucket,))) == 0
    assert len(decision_pids(stack, "authz")) == 2
