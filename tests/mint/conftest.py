from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mint_server.api.http import SERVICE
from mint_server.api.server import create_app
from satgate.config import load_config
from satgate.keyring import load_keyring
from satgate.ledger.initialise import init_ledger_blocking
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import free_port


async def serve_idp() -> tuple[DemoIdp, web.AppRunner]:
    port = free_port()
    idp = DemoIdp(issuer=f"http://127.0.0.1:{port}")
    runner = web.AppRunner(idp.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return idp, runner


@pytest.fixture
async def idp() -> AsyncIterator[DemoIdp]:
    """A real OIDC issuer on loopback: own RSA keys, discovery and JWKS over HTTP."""
    issuer, runner = await serve_idp()
    yield issuer
    await runner.cleanup()


@pytest.fixture
async def other_idp() -> AsyncIterator[DemoIdp]:
    issuer, runner = await serve_idp()
    yield issuer
    await runner.cleanup()


@dataclass
class MintUnderTest:
    client: TestClient
    config_path: Path
    policies_path: Path
    grpc_target: str

    @property
    def service(self):
        return self.client.app[SERVICE]

    async def exchange(self, jwt: str) -> tuple[int, dict[str, Any]]:
        response = await self.client.post("/api/mint/exchange", json={"credentials": jwt})
        return response.status, await response.json()

    async def audit(self) -> list[dict[str, Any]]:
        """What the test's calls wrote: the Mint's own start record (config_loaded) aside, tested on its own."""
        return [r for _seq, r, _prev, _hash in await self.service._audit.records() if r["type"] != "config_loaded"]

    async def start_records(self) -> list[dict[str, Any]]:
        return [r for _seq, r, _prev, _hash in await self.service._audit.records() if r["type"] == "config_loaded"]

    def keyring(self):
        return load_keyring(yaml.safe_load(self.config_path.read_text())["keyring"])


@pytest.fixture
async def start_mint(tmp_path, keyring_file) -> AsyncIterator[Callable[..., Any]]:
    clients: list[TestClient] = []

    async def start(policies: str | Path, authz: dict[str, Any] | None = None, **mint: Any) -> MintUnderTest:
        """`policies`: the YAML text, or a path (a file or a directory of them) to use as it is."""
        if isinstance(policies, Path):
            policies_path = policies
        else:
            policies_path = tmp_path / "policies.yaml"
            policies_path.write_text(textwrap.dedent(policies))
        grpc_target = f"127.0.0.1:{free_port()}"
        config_path = tmp_path / "satgate.yaml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "keyring": str(keyring_file),
                    "ledger": f"sqlite:///{tmp_path}/ledger.db",
                    "authz": {"attributes": ["department"], **(authz or {})},
                    "mint": {
                        "policies": str(policies_path),
                        "audit_log": str(tmp_path / "audit.db"),
                        "grpc_listen": grpc_target,
                        "policy_reload_seconds": 0.1,
                        **mint,
                    },
                }
            )
        )
        init_ledger_blocking(f"sqlite:///{tmp_path}/ledger.db")
        client = TestClient(TestServer(create_app(load_config(config_path)), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return MintUnderTest(client, config_path, policies_path, grpc_target)

    yield start
    for client in clients:
        await client.close()


def oidc_policy(
    issuer: str,
    *,
    name: str = "agents",
    audience: str = "satgate",
    match: str = 'sub: "agent-*"',
    issue: str = "budget_credits: 5",
    provider: str = "oidc",
    extra: str = "",
) -> str:
    return f"""
      - name: {name}
        provider: {provider}
        issuer: {issuer}
        audience: {audience}
        tenant: acme
        {extra}
        trust_rules:
          - match:
              claims: {{{match}}}
            issue: {{{issue}}}
    """


def policies(*items: str) -> str:
    return "policies:\n" + "\n".join(textwrap.indent(textwrap.dedent(item), "  ") for item in items)
