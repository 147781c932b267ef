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


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_thousands_of_concurrent_requests_spend_exactly_the_budget(tmp_path, transport):
    stack = Stack(
        tmp_path / "stack",
        StackPorts.free(),
        authz_workers=2,
        config_overrides={"authz": {"decision_log": "all"}},
        transport=transport,
        # The subject is the budget across workers, not Envoy's timeout: 128 checks in flight queue 130-370 ms in
        # front of the authz workers on this 2-core machine (the client, Envoy and both workers share the cores),
        # so on a runner half as fast the shipped 500 ms timeout turned some into 503s (refused, nothing spent,
        # but not the budget's answer this test counts). 10 s keeps the outcome independent of the runner's speed.
        ext_authz_timeout_ms=10_000,
    )
    with stack:
        keyring = load_keyring(stack.state_dir / "keyring.json")
        token = mint(keyring, "acme", [("scope", "api:*"), ("budget", "500")]).token
        # SO_REUSEPORT hashes each connection to a worker. gRPC: 128 concurrent streams make Envoy (4 streams per
        # connection, envoy.yaml) open ~32 connections, so all landing on one worker has odds of about 2**-31.
        # HTTP/1.1: one check per connection, 32 of them (envoy-http.yaml).
        statuses = asyncio.run(burst(stack.url, token, 2000, 128))
        refused = [line for line in stack.log_tail("envoy", 100_000).splitlines() if '"status":503' in line]
    assert statuses.count(200) == 500
    # every other answer is the budget's (a 503 would be a check that missed Envoy's timeout: its access-log line)
    assert statuses.count(402) == 1500, ({s: statuses.count(s) for s in set(statuses)}, refused[:3])
    bucket = TokenVerifier(keyring).verify(token).buckets[0]
    assert asyncio.run(open_ledger(f"sqlite:///{stack.state_dir}/ledger.db").remaining("acme", (bucket,))) == 0
    assert len(decision_pids(stack, "authz")) == 2
