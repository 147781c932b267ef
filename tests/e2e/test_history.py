"""A history check through real Envoy (Jepsen-style): a bounded open-loop run — requests sent on schedule
whatever the answers — with a short ext_authz timeout, checks stalled behind a held SQLite write lock, and an
upstream slower than the client's patience for some requests. Every request's outcome is recorded (200, 402,
503, client timeout) and the upstream counts what it took on. At the end, credits spent equal the requests the
upstream served, exactly: none for a check Envoy gave up on, none twice, none lost."""

import asyncio
import collections
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import Stack, StackPorts
from tests.ledgers import hold_write_lock

from .test_refused_requests_cost_nothing import BUDGET, spent

pytestmark = pytest.mark.e2e
UPSTREAM = [sys.executable, str(Path(__file__).with_name("faulty_upstream.py")), "--port", "{port}"]
RATE, SECONDS = 150, 3.0  # 450 requests, on schedule
CLIENT_TIMEOUT = 0.25  # the slow path answers after 0.4 s: those clients give up while the upstream serves


async def open_loop(url: str, token: str, during) -> list[str]:
    headers = {"authorization": f"Bearer {token}"}
    outcomes: list[str] = []
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as http:

        async def one(index: int) -> None:
            path = "/v1/items/slow/400" if index % 10 == 0 else f"/v1/items/{index}"
            try:
                async with http.get(f"{url}{path}", headers=headers) as response:
                    await response.read()
                    outcomes.append(str(response.status))
            except TimeoutError:
                outcomes.append("client timeout")

        started = time.monotonic()
        tasks = [asyncio.create_task(during())]
        for index in range(int(RATE * SECONDS)):
            await asyncio.sleep(max(0.0, started + index / RATE - time.monotonic()))
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
    return outcomes


def test_credits_spent_equal_the_requests_the_upstream_served(tmp_path):
    stack = Stack(tmp_path / "stack", StackPorts.free(), upstream_argv=UPSTREAM, ext_authz_timeout_ms=150)
    with stack:
        keyring = load_keyring(stack.state_dir / "keyring.json")
        token = mint(keyring, "acme", [("scope", "api:*"), ("budget", str(BUDGET))]).token

        async def stalls() -> None:  # the write lock held past Envoy's timeout, twice
            for pause in (0.6, 1.2):
                await asyncio.sleep(pause)
                holder = await asyncio.to_thread(hold_write_lock, stack.state_dir / "ledger.db", 0.4)
                await asyncio.to_thread(holder.wait, 10)

        outcomes = asyncio.run(open_loop(stack.url, token, stalls))
        time.sleep(1.0)  # the slow answers finish upstream
        served = httpx.get(f"http://127.0.0.1:{stack.ports.upstream}/served", timeout=10, trust_env=False).json()
        counts = collections.Counter(outcomes)
        charged = spent(stack, f"sqlite:///{stack.state_dir}/ledger.db", token)
    print(
        f"\nhistory: {dict(counts)}; upstream served {served['served']}; credits spent {charged}; "
        f"client timeouts the upstream served: {served['served'] - counts['200']}"
    )
    assert sum(counts.values()) == int(RATE * SECONDS)
    assert counts["503"] > 0 and counts["client timeout"] > 0  # both faults happened
    assert set(counts) <= {"200", "503", "client timeout"}
    assert charged == served["served"]  # exactly what was served, whatever the client saw
    assert counts["200"] <= served["served"] <= counts["200"] + counts["client timeout"]
