"""No credit is spent on a request the client did not get (SPEC v2), through real Envoy: checks stuck behind a held
SQLite write lock, or behind a paused Redis, past Envoy's ext_authz timeout — credits spent equal the requests
answered 200, exactly. Meanwhile refusals that need no write (401s) and health are not held up."""

import asyncio
import signal
import time

import aiohttp
import pytest

from satgate.keyring import load_keyring
from satgate.ledger.url import open_ledger
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier
from satgate_dev.devstack import Stack, StackPorts, grpc_serving
from satgate_dev.redis_server import RedisServer
from tests.ledgers import hold_write_lock

pytestmark = pytest.mark.e2e
BUDGET = 10_000


async def burst(url: str, token: str, seconds: float, workers: int, during) -> list[int]:
    headers = {"authorization": f"Bearer {token}"}
    statuses: list[int] = []
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers)) as http:

        async def client() -> None:
            while time.monotonic() - started < seconds:
                async with http.get(f"{url}/v1/items", headers=headers) as response:
                    await response.read()
                    statuses.append(response.status)

        await asyncio.gather(during(), *(client() for _ in range(workers)))
    return statuses


def spent(stack: Stack, ledger_url: str, token: str) -> int:
    verified = TokenVerifier(load_keyring(stack.state_dir / "keyring.json")).verify(token)

    async def remaining() -> int:
        ledger = open_ledger(ledger_url)
        try:
            return await ledger.remaining(verified.tenant, verified.buckets)
        finally:
            await ledger.close()

    return BUDGET - asyncio.run(remaining())


def test_checks_behind_a_held_sqlite_lock_cost_nothing_and_stall_no_one_else(tmp_path):
    with Stack(tmp_path / "stack", StackPorts.free()) as stack:
        token = mint(
            load_keyring(stack.state_dir / "keyring.json"), "acme", [("scope", "api:*"), ("budget", str(BUDGET))]
        )
        side: dict[str, object] = {}

        async def hold_the_lock() -> None:
            await asyncio.sleep(0.5)
            holder = await asyncio.to_thread(hold_write_lock, stack.state_dir / "ledger.db", 1.2)
            await asyncio.sleep(0.3)  # the lock is held now: what else still answers?
            async with aiohttp.ClientSession() as http:
                t0 = time.monotonic()
                async with http.get(f"{stack.url}/v1/items", headers={"authorization": "Bearer junk"}) as r:
                    side["junk"] = (r.status, time.monotonic() - t0)
            t0 = time.monotonic()
            serving = await asyncio.to_thread(grpc_serving, f"127.0.0.1:{stack.ports.authz}", "")
            side["health"] = (serving, time.monotonic() - t0)
            await asyncio.to_thread(holder.wait)

        statuses = asyncio.run(burst(stack.url, token.token, 3.0, 16, hold_the_lock))
        time.sleep(0.5)  # refunds of checks whose caller went away
        charged = spent(stack, f"sqlite:///{stack.state_dir}/ledger.db", token.token)
    assert set(statuses) <= {200, 503}
    assert statuses.count(503) > 0  # the lock outlasted Envoy's timeout: these were refused...
    assert charged == statuses.count(200)  # ...and cost nothing
    junk_status, junk_seconds = side["junk"]
    assert junk_status == 401 and junk_seconds < 0.2, side
    serving, health_seconds = side["health"]
    assert serving and health_seconds < 0.5, side


def test_checks_behind_a_paused_redis_cost_nothing(tmp_path):
    redis = RedisServer(tmp_path / "redis", persistent=True).start()
    try:
        with Stack(tmp_path / "stack", StackPorts.free(), config_overrides={"ledger": redis.url}) as stack:
            keyring = load_keyring(stack.state_dir / "keyring.json")
            token = mint(keyring, "acme", [("scope", "api:*"), ("budget", str(BUDGET))])

            async def pause_redis() -> None:
                await asyncio.sleep(0.5)
                redis.process.send_signal(signal.SIGSTOP)
                await asyncio.sleep(1.5)
                redis.process.send_signal(signal.SIGCONT)

            statuses = asyncio.run(burst(stack.url, token.token, 3.5, 16, pause_redis))
            time.sleep(1.5)  # queued scripts ran past their deadlines; refunds of unknown outcomes are done
            charged = spent(stack, redis.url, token.token)
    finally:
        redis.stop()
    assert set(statuses) <= {200, 503}
    assert statuses.count(503) > 0
    assert charged == statuses.count(200)
