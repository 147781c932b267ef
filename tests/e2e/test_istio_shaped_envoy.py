"""Envoy configured the way Istio configures a sidecar for our extension provider: one ext_authz filter for the
whole workload, no per-route context_extensions (Istio cannot set them), the request body buffered as the
satgate-mcp provider asks. Scopes and costs must then come from the route table shipped in
deploy/kubernetes/config.yaml — checked here with real HTTP through real Envoy."""

import copy
from pathlib import Path

import httpx
import pytest
import yaml

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev import envoy_config
from satgate_dev.devstack import Stack, StackPorts
from tests.deploy.manifests import ISTIO, extension_providers, satgate_configmap

from .path_attacks import escapes

pytestmark = pytest.mark.e2e

EXT_AUTHZ = "envoy.filters.http.ext_authz"
# What istiod sets on a sidecar's HTTP connection manager for each meshConfig.pathNormalization.normalization
# (Istio's documented translation: BASE is RFC 3986 normalisation with backslashes as slashes).
ISTIO_NORMALIZATION = {
    "NONE": {"normalize_path": False, "merge_slashes": False, "path_with_escaped_slashes_action": "KEEP_UNCHANGED"},
    "BASE": {"normalize_path": True, "merge_slashes": False, "path_with_escaped_slashes_action": "KEEP_UNCHANGED"},
    "MERGE_SLASHES": {
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
    },
    "DECODE_AND_MERGE_SLASHES": {
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD",
    },
}


def mesh_normalization() -> str:
    (operator,) = yaml.safe_load_all((ISTIO / "mesh-config.yaml").read_text())
    return operator["spec"]["meshConfig"].get("pathNormalization", {}).get("normalization", "BASE")


def shipped_route_table() -> list[dict]:
    return yaml.safe_load(satgate_configmap()["satgate.yaml"])["authz"]["routes"]


def mcp_provider_body() -> dict:
    body = extension_providers()["satgate-mcp"]["includeRequestBodyInCheck"]
    return {
        "max_request_bytes": body["maxRequestBytes"],
        "allow_partial_message": body["allowPartialMessage"],
        "pack_as_bytes": body["packAsBytes"],
    }


def istio_shaped(tmp_path: Path, normalization: str | None = None) -> Path:
    """The shipped config with every per-route ext_authz setting removed, the body settings on the filter, and
    the path normalised as the mesh config (or `normalization`) makes istiod normalise it."""
    doc = copy.deepcopy(yaml.safe_load(envoy_config.SHIPPED_CONFIG.read_text()))
    manager = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    manager.update(ISTIO_NORMALIZATION[normalization or mesh_normalization()])
    for vhost in manager["route_config"]["virtual_hosts"]:
        vhost.pop("typed_per_filter_config", None)
        vhost["routes"] = [r for r in vhost["routes"] if r["match"].get("path") != "/healthz"]
        for route in vhost["routes"]:
            route.pop("typed_per_filter_config", None)
    (ext_authz,) = [f for f in manager["http_filters"] if f["name"] == EXT_AUTHZ]
    ext_authz["typed_config"]["with_request_body"] = mcp_provider_body()
    path = tmp_path / "envoy-istio-shaped.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def istio_stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("istio")
    with Stack(
        tmp,
        StackPorts.free(),
        envoy_source=istio_shaped(tmp),
        config_overrides={"authz": {"routes": shipped_route_table()}},
    ) as running:
        yield running


def call(stack: Stack, token: str, method: str, path: str, **kwargs) -> httpx.Response:
    with httpx.Client(base_url=stack.url, trust_env=False, timeout=10) as http:
        return http.request(method, path, headers={"authorization": f"Bearer {token}"}, **kwargs)


def test_no_context_extensions_reach_the_server(istio_stack):
    rendered = yaml.safe_load((istio_stack.state_dir / "envoy.yaml").read_text())
    assert "context_extensions" not in yaml.safe_dump(rendered)


def test_scopes_and_costs_come_from_the_route_table(istio_stack):
    keyring = load_keyring(istio_stack.state_dir / "keyring.json")
    agent = mint(keyring, "acme", [("scope", "api:read,mcp:tool:*"), ("budget", "20")]).token  # as k8s-agents issues
    hello = call(istio_stack, agent, "GET", "/v1/hello")
    assert hello.status_code == 200
    assert hello.headers["x-satgate-credits-remaining"] == "19"  # /v1/: api:read, the default cost 1
    premium = call(istio_stack, agent, "GET", "/v1/premium/report")
    assert (premium.status_code, premium.json()["error"]) == (403, "insufficient_scope")
    write = call(istio_stack, agent, "POST", "/v1/write/doc", json={})
    assert (write.status_code, write.json()["error"]) == (403, "insufficient_scope")

    writer = mint(keyring, "acme", [("scope", "api:write,api:premium"), ("budget", "20")]).token
    assert call(istio_stack, writer, "POST", "/v1/write/doc", json={}).headers["x-satgate-credits-remaining"] == "18"
    assert call(istio_stack, writer, "GET", "/v1/premium/x").headers["x-satgate-credits-remaining"] == "13"


def test_mcp_bodies_reach_the_check_through_the_provider_settings(istio_stack):
    keyring = load_keyring(istio_stack.state_dir / "keyring.json")
    agent = mint(keyring, "acme", [("scope", "api:read,mcp:tool:search"), ("budget", "5")]).token
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    search = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search", "arguments": {}}}
    delete = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "delete_all", "arguments": {}}}
    free = call(istio_stack, agent, "POST", "/mcp", json=listing)
    assert (free.status_code, free.headers["x-satgate-credits-remaining"]) == (200, "5")  # tools/list is free
    assert free.json()["headers"]["x-satgate-credits-charged"] == "0"  # what the upstream saw
    priced = call(istio_stack, agent, "POST", "/mcp", json=search)
    assert (priced.status_code, priced.headers["x-satgate-credits-remaining"]) == (200, "4")
    refused = call(istio_stack, agent, "POST", "/mcp", json=delete)  # no mcp:tool:delete_all scope
    assert refused.status_code == 403
    assert refused.json()["id"] == 3 and refused.json()["error"]["data"]["error"] == "insufficient_scope"
    too_big = call(istio_stack, agent, "POST", "/mcp", content=b"x" * (mcp_provider_body()["max_request_bytes"] + 1))
    assert too_big.status_code == 413  # Envoy refuses before any check, as the Istio sidecar would


def test_no_path_reaches_the_workload_that_its_token_or_route_refuses(istio_stack):
    keyring = load_keyring(istio_stack.state_dir / "keyring.json")
    assert list(escapes(istio_stack.ports.envoy, keyring)) == []
