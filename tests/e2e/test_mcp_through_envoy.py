"""JSON-RPC through real Envoy on the shipped /mcp route: the body reaches the check, prices drain the budget,
refusals come back as JSON-RPC errors, and oversized bodies never reach anyone."""

import json

import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import Stack, StackPorts

pytestmark = pytest.mark.e2e

PRICING = {
    "default": {
        "tools": {"search": 2, "fetch_*": 3, "*": 1},
        "methods": {"initialize": 0, "tools/list": 0, "notifications/*": 0},
        "default": 1,
    }
}


@pytest.fixture(scope="module")
def mcp_stack(tmp_path_factory, transport):
    with Stack(
        tmp_path_factory.mktemp("mcp"),
        StackPorts.free(),
        config_overrides={"authz": {"pricing": PRICING}},
        transport=transport,
    ) as s:
        yield s


def rpc(tool: str, request_id: int) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": tool, "arguments": {}}}


def test_priced_calls_drain_the_budget_and_402_is_a_jsonrpc_error(mcp_stack):
    token = mint(load_keyring(mcp_stack.state_dir / "keyring.json"), "acme", [("budget", "7")]).token
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    with httpx.Client(base_url=mcp_stack.url, trust_env=False, timeout=10) as http:
        listing = http.post("/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert listing.status_code == 200
        assert listing.headers["x-satgate-credits-remaining"] == "7"  # tools/list is free
        assert listing.json()["headers"]["x-satgate-credits-charged"] == "0"  # what the upstream saw
        assert (
            http.post("/mcp", headers=headers, json=rpc("fetch_page", 2)).headers["x-satgate-credits-remaining"] == "4"
        )
        assert http.post("/mcp", headers=headers, json=rpc("search", 3)).headers["x-satgate-credits-remaining"] == "2"
        refused = http.post("/mcp", headers=headers, json=rpc("fetch_page", 4))
    assert refused.status_code == 402
    error = refused.json()
    assert (error["jsonrpc"], error["id"], error["error"]["code"]) == ("2.0", 4, -32002)
    assert (error["error"]["data"]["cost"], error["error"]["data"]["remaining"]) == (3, 2)


def test_tools_caveat_refusal_carries_the_id(mcp_stack):
    token = mint(load_keyring(mcp_stack.state_dir / "keyring.json"), "acme", [("tools", "search")]).token
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=mcp_stack.url, trust_env=False, timeout=10) as http:
        assert http.post("/mcp", headers=headers, json=rpc("search", 1)).status_code == 200
        denied = http.post("/mcp", headers=headers, json=rpc("delete_all", 99))
    assert denied.status_code == 403
    assert (denied.json()["id"], denied.json()["error"]["data"]["caveat"]) == (99, "tools")


def test_oversized_bodies_are_stopped_by_envoy(mcp_stack):
    token = mint(load_keyring(mcp_stack.state_dir / "keyring.json"), "acme").token
    huge = json.dumps(rpc("search", 1) | {"padding": "x" * (2 * 1024 * 1024)})
    response = httpx.post(
        f"{mcp_stack.url}/mcp",
        content=huge,
        trust_env=False,
        timeout=30,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert response.status_code == 413


def test_malformed_json_is_a_400_jsonrpc_parse_error(mcp_stack):
    token = mint(load_keyring(mcp_stack.state_dir / "keyring.json"), "acme").token
    response = httpx.post(
        f"{mcp_stack.url}/mcp",
        content=b"{nope",
        trust_env=False,
        timeout=10,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700
