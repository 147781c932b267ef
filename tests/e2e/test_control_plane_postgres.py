"""A mesh whose control plane is PostgreSQL: two authz replicas behind one real Envoy write their usage records
into the one database, and `satgate usage` reports the sum of both."""

import asyncio
import json
import subprocess
import sys
import time

import pytest

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import Stack, StackPorts
from satgate_dev.redis_server import RedisServer
from tests.control_plane.conftest import upgraded

from .conftest import burst, decision_pids

pytestmark = pytest.mark.e2e


def usage_by_tenant(config) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "satgate_cli", "usage", "--by", "tenant", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {row["key"]: row for row in json.loads(done.stdout)}


def test_usage_of_every_authz_replica_is_summed_in_postgres(tmp_path, postgres_url):
    asyncio.run(upgraded(postgres_url))  # what `satgate db upgrade` does before the servers start
    redis = RedisServer(tmp_path / "redis").start()
    stack = Stack(
        tmp_path / "stack",
        StackPorts.free(),
        authz_replicas=2,
        config_overrides={"ledger": redis.url, "control_plane": postgres_url, "authz": {"decision_log": "all"}},
    )
    try:
        with stack:
            keyring = load_keyring(stack.state_dir / "keyring.json")
            token = mint(keyring, "acme", [("scope", "api:*"), ("budget", "150")]).token
            statuses = asyncio.run(burst(stack.url, token, 200, 32))
            assert decision_pids(stack, "authz") and decision_pids(stack, "authz-1")  # both replicas decided
            deadline = time.monotonic() + 15  # each replica flushes its batch every second
            while (reported := usage_by_tenant(stack.config_path).get("acme", {})).get("requests") != 200:
                assert time.monotonic() < deadline, reported
                time.sleep(0.2)
        assert reported["allowed"] == statuses.count(200)
        assert reported["credits"] == statuses.count(200)
        assert reported["denied"] == 200 - statuses.count(200)
    finally:
        redis.stop()
