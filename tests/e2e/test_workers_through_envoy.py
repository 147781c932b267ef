"""Two authz worker processes behind a real Envoy: the load reaches both, and a shared budget is never
overspent by the race between them."""

import asyncio
import json

import httpx
import pytest

from satgate.devstack import Stack, StackPorts
from satgate.keyring import load_keyring
from satgate.tokens.mint import mint

pytestmark = pytest.mark.e2e


def test_concurrent_burst_spreads_over_workers_and_spends_exactly_the_budget(tmp_path):
    stack = Stack(
        tmp_path / "stack", StackPorts.free(), authz_workers=2, config_overrides={"authz": {"decision_log": "all"}}
    )
    with stack:
        token = mint(load_keyring(stack.state_dir / "keyring.json"), "acme", [("scope", "api:*"), ("budget", "150")])

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(base_url=stack.url, trust_env=False, timeout=30, limits=limits) as http:
                headers = {"authorization": f"Bearer {token.token}"}
                responses = await asyncio.gather(*(http.get("/v1/items", headers=headers) for _ in range(400)))
            return [r.status_code for r in responses]

        statuses = asyncio.run(burst())
    assert statuses.count(200) == 150
    assert statuses.count(402) == 250
    lines = [json.loads(line) for line in stack.log_tail("authz", 10_000).splitlines() if line.startswith("{")]
    deciders = {line["pid"] for line in lines if line["event"] == "decision"}
    assert len(deciders) == 2
