from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.ledger.url import open_ledger
from satgate_dev.devstack import Stack, StackPorts

TRANSPORTS = ["grpc", "http"]


@pytest.fixture(scope="module", params=TRANSPORTS)
def transport(request) -> str:
    """Every test on the shared stack runs through real Envoy on both ext_authz transports (SPEC: Transports)."""
    return request.param


@pytest.fixture(scope="module")
def stack(tmp_path_factory, transport):
    with Stack(tmp_path_factory.mktemp("stack"), StackPorts.free(), transport=transport) as running:
        yield running


@pytest.fixture(scope="module")
def stack_keyring(stack):
    return load_keyring(stack.state_dir / "keyring.json")


@pytest.fixture
def client(stack):
    with httpx.Client(base_url=stack.url, trust_env=False, timeout=10) as http:
        yield http


def revoke(stack: Stack, tenant: str, revocation_id: str) -> None:
    """Revoke through the same SQLite file the authz server uses (another process, like the CLI)."""

    async def run() -> None:
        ledger = open_ledger(f"sqlite:///{stack.state_dir}/ledger.db")
        await ledger.revoke(tenant, revocation_id)
        await ledger.close()

    asyncio.run(run())


async def burst(url: str, token: str, count: int, concurrency: int, on_response=None) -> list[int]:
    """`count` concurrent GETs through Envoy; aiohttp because httpx's async pool manages ~200 req/s here.
    Enough concurrency makes Envoy open many connections to the authz cluster (4 streams each)."""
    import aiohttp

    headers = {"authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def one() -> int:
            async with http.get(f"{url}/v1/items", headers=headers) as response:
                await response.read()
                if on_response is not None:
                    on_response(response.status)
                return response.status

        return list(await asyncio.gather(*(one() for _ in range(count))))


def decision_pids(stack: Stack, name: str) -> set[int]:
    lines = stack.log_tail(name, 100_000).splitlines()
    return {json.loads(line)["pid"] for line in lines if line.startswith("{") and '"decision"' in line}
