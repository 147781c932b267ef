"""A dead replica costs at most a brief burst of 503s, never a share of traffic (SPEC v2: Readiness): two authz
replicas behind the shipped envoy.yaml, one killed with SIGKILL under load."""

import asyncio
import signal
import time

import aiohttp
import pytest

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import Stack, StackPorts

pytestmark = pytest.mark.e2e


async def load(
    url: str, token: str, seconds: float, workers: int, kill_at: float, kill, pause: float
) -> list[tuple[float, float, int]]:
    """`workers` clients each sending a request, then pausing `pause`, for `seconds`; (sent, answered, status) of
    each, in seconds since the start."""
    started = time.monotonic()
    seen: list[tuple[float, float, int]] = []
    headers = {"authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers)) as http:

        async def client() -> None:
            while (now := time.monotonic() - started) < seconds:
                async with http.get(f"{url}/v1/items", headers=headers) as response:
                    await response.read()
                    seen.append((now, time.monotonic() - started, response.status))
                await asyncio.sleep(pause)

        async def killer() -> None:
            await asyncio.sleep(kill_at)
            kill()

        await asyncio.gather(killer(), *(client() for _ in range(workers)))
    return seen


def test_killing_one_of_two_replicas_costs_a_brief_burst_of_503s(tmp_path):
    with Stack(tmp_path / "stack", StackPorts.free(), authz_replicas=2) as stack:
        token = mint(load_keyring(stack.state_dir / "keyring.json"), "acme", [("scope", "api:*")]).token
        victim = stack.processes["authz-1"]
        kill_at = 1.5
        # ~200 checks/s: well inside one replica's capacity, so what the test sees is failover, not overload (a
        # saturated survivor on this 2-core VM can miss Envoy's 500 ms timeout now and then, kill or no kill)
        kill = lambda: victim.send_signal(signal.SIGKILL)  # noqa: E731
        seen = asyncio.run(load(stack.url, token, 6.0, 4, kill_at, kill, pause=0.02))
        refused = [line for line in stack.log_tail("envoy", 100_000).splitlines() if '"status":503' in line]
    statuses = [status for _, _, status in seen]
    assert set(statuses) <= {200, 503}, set(statuses)
    before = [s for _, answered, s in seen if answered < kill_at]
    # The bar: 503s stop within 1 s of the kill — every 503 is *answered* by then. Measured: the first failed
    # connection ejects the replica at once (no host-update merge window), so only checks in flight at the kill fail,
    # some after Envoy's 500 ms ext_authz timeout.
    late = [
        (round(sent - kill_at, 3), round(answered - kill_at, 3))
        for sent, answered, s in seen
        if s == 503 and answered >= kill_at + 1.0
    ]
    after = [s for sent, _, s in seen if sent >= kill_at + 1.0]
    assert len(before) > 50 and set(before) == {200}  # both replicas served before
    assert not late, (late, refused[-5:])
    assert len(after) > 100 and set(after) == {200}, ({s: after.count(s) for s in set(after)}, refused[-5:])
    # the brief burst: checks in flight on the dead replica, most of them retried on the survivor by Envoy
    assert statuses.count(503) < 0.02 * len(statuses), statuses.count(503)
