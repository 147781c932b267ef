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
    )
    with stack:
        keyring = load_keyring(stack.state_dir / "keyring.json")
        token = mint(keyring, "acme", [("scope", "api:*"), ("budget", "500")]).token
        # SO_REUSEPORT hashes each connection to a worker. gRPC: 128 concurrent streams make Envoy (4 streams per
        # connection, envoy.yaml) open ~32 connections, so all landing on one worker has odds of about 2**-31.
        # HTTP/1.1: one check per connection, 32 of them (envoy-http.yaml). 128 in flight keep the queue in front of
        # the authz server inside the 500 ms ext_authz timeout on this 2-core machine (~800 checks/s through the
        # whole stack, client included): at 256, ~320 ms of queue on average, at 192 a check now and then past its
        # deadline (refused, nothing spent — but not the budget's answer this test counts).
        statuses = asyncio.run(burst(stack.url, token, 2000, 128))
        refused = [line for line in stack.log_tail("envoy", 100_000).splitlines() if '"status":503' in line]
    assert statuses.count(200) == 500
    # every other answer is the budget's; a 503 is a check that missed Envoy's timeout (its access-log line says)
    assert statuses.count(402) == 1500, ({s: statuses.count(s) for s in set(statuses)}, refused[:3])
    bucket = TokenVerifier(keyring).verify(token).buckets[0]
    assert asyncio.run(open_ledger(f"sqlite:///{stack.state_dir}/ledger.db").remaining("acme", (bucket,))) == 0
    assert len(decision_pids(stack, "authz")) == 2
