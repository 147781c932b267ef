"""Two authz worker processes behind a real Envoy: the load reaches both, and a shared budget is never
overspent by the race between them."""

import asyncio
import json

import aiohttp
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
            # SO_REUSEPORT hashes each connection to a worker: enough concurrent streams make Envoy open ~16
            # connections (16 streams each), so all landing on one worker has odds of about 2**-15.
            # aiohttp rather than httpx: httpx's async pool slows to ~200 req/s at this concurrency.
            connector = aiohttp.TCPConnector(limit=256)
            async with aiohttp.ClientSession(base_url=stack.url, connector=connector) as http:
                headers = {"authorization": f"Bearer {token.token}"}

                async def one() -> int:
                    async with http.get("/v1/items", headers=headers) as response:
                        await response.read()
                        return response.status

                return await asyncio.gather(*(one() for _ in range(800)))

        statuses = asyncio.run(burst())
    assert statuses.count(200) == 150
    assert statuses.count(402) == 650
    lines = [json.loads(line) for line in stack.log_tail("authz", 10_000).splitlines() if line.startswith("{")]
    deciders = {line["pid"] for line in lines if line["event"] == "decision"}
    assert len(deciders) == 2
