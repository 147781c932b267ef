from __future__ import annotations

import asyncio

import httpx
import pytest

from satgate.devstack import Stack, StackPorts
from satgate.keyring import load_keyring
from satgate.ledger.url import open_ledger


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("stack"), StackPorts.free()) as running:
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
