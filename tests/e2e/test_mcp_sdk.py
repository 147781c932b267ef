"""A real MCP server (official SDK, Streamable HTTP) behind real Envoy, and the SDK's client as the agent:
priced tool calls drain the budget and the 402 reaches the agent as a JSON-RPC error it surfaces."""

import asyncio
import sys
from pathlib import Path

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from satgate import BudgetExhausted, IdentityFile, NotAuthorized, NotPermitted, SatGateAgent, SatGateClient
from satgate.keyring import load_keyring
from satgate.ledger.url import open_ledger
from satgate.tokens.mint import mint
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import Stack, StackPorts
from tests.policies import demo_issuer_policy

pytestmark = pytest.mark.e2e

SERVER = str(Path(__file__).with_name("mcp_server.py"))
PRICING = {
    "default": {
        "tools": {"search": 2, "fetch_*": 3},
        "methods": {"initialize": 0, "tools/list": 0, "notifications/*": 0},
        "default": 0,
    }
}


async def agent(url: str, token: str) -> list:
    """What an agent does: initialize, list tools, call them until the budget says no."""
    outcomes: list = []
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        streamable_http_client(url, http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        outcomes.append(sorted(tool.name for tool in (await session.list_tools()).tools))
        for tool, arguments in [("search", {"query": "a"}), ("fetch_page", {"url": "u"}), ("search", {"query": "b"})]:
            try:
                result = await session.call_tool(tool, arguments)
                outcomes.append(result.content[0].text)
            except MCPError as exc:
                outcomes.append((exc.code, exc.error.message, exc.error.data))
    return outcomes


def test_the_sdk_client_spends_its_budget_and_surfaces_the_402(tmp_path):
    stack = Stack(
        tmp_path / "stack",
        StackPorts.free(),
        config_overrides={"authz": {"pricing": PRICING}},
        upstream_argv=[sys.executable, SERVER, "{port}"],
    )
    with stack:
        token = mint(load_keyring(stack.state_dir / "keyring.json"), "acme", [("budget", "6")]).token
        outcomes = asyncio.run(agent(f"{stack.url}/mcp", token))
    assert outcomes[0] == ["fetch_page", "search"]  # initialize and tools/list are free
    assert outcomes[1:3] == ["results for a", "contents of u"]  # 2 + 3 credits
    code, message, data = outcomes[3]  # 1 credit left, search costs 2
    assert (code, message) == (-32002, "budget cannot pay 2 credits")
    assert (data["error"], data["cost"], data["remaining"]) == ("budget_exhausted", 2, 1)


def test_satgate_client_exchanges_refreshes_and_types_the_refusals(tmp_path):
    """`from satgate import SatGateClient` as the token-delivery guide writes it: a real MCP server behind real
    Envoy, the Mint exchanging the agent's identity file (SATGATE_MINT_URL as the guide's full exchange URL)."""
    ports = StackPorts.free()
    policy = tmp_path / "agents.yaml"
    policy.write_text(demo_issuer_policy(ports.idp, '{budget_credits: 6, ttl: 10m, scopes: ["mcp:*"]}'))
    stack = Stack(
        tmp_path / "stack",
        ports,
        config_overrides={"authz": {"pricing": PRICING}},
        upstream_argv=[sys.executable, SERVER, "{port}"],
        policies_path=policy,
    )
    with stack:
        identity = tmp_path / "identity"
        identity.write_text(DemoIdp.load(stack.idp_state).token("agent-1", "satgate"))
        mint_url = f"http://127.0.0.1:{ports.mint}/api/mint/exchange"

        async def exchanging_agent() -> list:
            seen: list = []
            async with SatGateClient(url=f"{stack.url}/mcp", mint_url=mint_url, identity_file=identity) as client:
                seen.append(sorted(tool.name for tool in await client.list_tools()))
                seen.append((await client.call_tool("search", {"query": "a"})).content[0].text)  # 2 credits
                seen.append((await client.call_tool("fetch_page", {"url": "u"})).content[0].text)  # 3 credits
                with pytest.raises(BudgetExhausted) as refused:
                    await client.call_tool("search", {"query": "b"})
                seen.append((refused.value.status, refused.value.cost, refused.value.remaining))
            return seen

        assert asyncio.run(exchanging_agent()) == [
            ["fetch_page", "search"],
            "results for a",
            "contents of u",
            (402, 2, 0),  # the identity's budget is windowed (the rule's ttl): the 402 says when it refills
        ]

        async def refreshing_agent() -> tuple:
            """Its token revoked mid-session, the client exchanges a new one and the call goes through. Another
            agent: agent-1's budget is spent, across all its tokens (identity budgets)."""
            other = tmp_path / "identity-2"
            other.write_text(DemoIdp.load(stack.idp_state).token("agent-2", "satgate"))
            agent = SatGateAgent(mint_url, identity=IdentityFile(other))
            async with SatGateClient(url=f"{stack.url}/mcp", agent=agent) as client:
                first = agent.held
                ledger = open_ledger(f"sqlite:///{stack.state_dir}/ledger.db")
                await ledger.revoke(first.tenant, first.token_id)
                await ledger.close()
                found = (await client.call_tool("search", {"query": "c"})).content[0].text
                return found, agent.held.token_id != first.token_id

        assert asyncio.run(refreshing_agent()) == ("results for c", True)
        narrow = mint(load_keyring(stack.state_dir / "keyring.json"), "acme", [("tools", "search")]).token

        async def token_agent() -> tuple:
            async with SatGateClient(url=f"{stack.url}/mcp", token=narrow) as client:
                found = (await client.call_tool("search", {"query": "x"})).content[0].text
                with pytest.raises(NotPermitted) as refused:
                    await client.call_tool("fetch_page", {"url": "u"})
                return found, refused.value.status, refused.value.caveat

        assert asyncio.run(token_agent()) == ("results for x", 403, "tools")

        async def stranger() -> None:
            async with SatGateClient(url=f"{stack.url}/mcp", token="not-a-token"):
                pass

        with pytest.raises(NotAuthorized):
            asyncio.run(stranger())
