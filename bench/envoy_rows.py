"""The bench's Envoy: one listener per row, each a copy of the shipped listener of its transport (envoy.yaml,
envoy-http.yaml) answering with direct_response, and one authz cluster per server, copied from the shipped one."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

from satgate_dev import envoy_config
from satgate_dev.devstack import LOOPBACK

AUTHZ_FILTER = "envoy.filters.http.ext_authz"
BENCH_PATH = "/v1/items"
MCP_PATH = "/mcp"
MCP_BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"x"}}}'
# The HTTP servers' route table: what envoy.yaml's context_extensions say for the same paths.
HTTP_ROUTES = [
    {"match": {"path_prefix": MCP_PATH}, "settings": {"mcp": "true"}},
    {"match": {"path_prefix": "/v1/"}, "settings": {"scope": "api:read"}},
]


@dataclass(frozen=True)
class Row:
    cluster: str | None  # None: ext_authz removed
    transport: str = "grpc"
    mcp: bool = False

    @property
    def path(self) -> str:
        return MCP_PATH if self.mcp else BENCH_PATH


ROWS: dict[str, Row] = {
    "plain": Row(None),
    "noop": Row("noop_authz"),
    "noop_http": Row("noop_http", "http"),
    "full": Row("satgate_authz"),
    "full_http": Row("satgate_authz_http", "http"),
    "full_redis": Row("satgate_authz_redis"),
    "full_http_redis": Row("satgate_authz_http_redis", "http"),
    "full_mcp": Row("satgate_authz", mcp=True),  # the JSON-RPC body buffered and parsed
    "mcp_http": Row("satgate_authz_http", "http", mcp=True),
    "full_w2": Row("satgate_authz_w2"),  # authz.workers: 2, one SQLite ledger
    "full_http_w2": Row("satgate_authz_http_w2", "http"),
    # the authz cluster over a unix socket (envoy/variants/authz-over-unix-socket.yaml)
    "noop_http_uds": Row("noop_http_uds", "http"),
    "full_uds": Row("satgate_authz_uds"),
    "full_http_uds": Row("satgate_authz_http_uds", "http"),
}
UDS_CLUSTERS = frozenset({"noop_http_uds", "satgate_authz_uds", "satgate_authz_http_uds"})
# The fixed-rate run (hey): each full row beside the no-op of its transport, for the latency we add.
FIXED_RATE_ROWS = ("plain", "noop", "full", "noop_http", "full_http")
CLUSTER_TRANSPORT = {row.cluster: row.transport for row in ROWS.values() if row.cluster}


def _shipped(transport: str) -> dict:
    return yaml.safe_load(Path(envoy_config.SHIPPED_CONFIGS[transport]).read_text())


def _listener(name: str, row: Row, port: int) -> dict:
    listener = copy.deepcopy(_shipped(row.transport)["static_resources"]["listeners"][0])
    listener["name"] = name
    listener["address"] = {"socket_address": {"address": LOOPBACK, "port_value": port}}
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm.pop("access_log", None)  # stdout logging would measure the terminal, not authz
    hcm["stat_prefix"] = name
    vhost = hcm["route_config"]["virtual_hosts"][0]
    route = next(r for r in vhost["routes"] if r["match"].get("prefix") == (MCP_PATH if row.mcp else "/v1/"))
    route.pop("route")
    route["direct_response"] = {"status": 200, "body": {"inline_string": "ok"}}
    vhost["routes"] = [route]
    if row.cluster is None:
        hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != AUTHZ_FILTER]
        route.pop("typed_per_filter_config", None)
        vhost.pop("typed_per_filter_config", None)
        return listener
    authz = next(f for f in hcm["http_filters"] if f["name"] == AUTHZ_FILTER)["typed_config"]
    if row.transport == "grpc":
        authz["grpc_service"]["envoy_grpc"]["cluster_name"] = row.cluster
    else:
        authz["http_service"]["server_uri"]["cluster"] = row.cluster
    if row.mcp and row.transport == "grpc":
        route["typed_per_filter_config"][AUTHZ_FILTER]["check_settings"]["context_extensions"] = {"mcp": "true"}
    return listener


def bench_envoy_config(ports: dict[str, int], cluster_addresses: dict[str, str], admin_port: int) -> dict:
    """`cluster_addresses`: host:port, or unix:/path for a pipe endpoint."""
    doc = _shipped("grpc")
    doc["static_resources"]["listeners"] = [_listener(name, ROWS[name], port) for name, port in ports.items()]
    templates = {
        transport: next(c for c in _shipped(transport)["static_resources"]["clusters"] if c["name"] == "satgate_authz")
        for transport in ("grpc", "http")
    }
    clusters = []
    for name, where in cluster_addresses.items():
        cluster = copy.deepcopy(templates[CLUSTER_TRANSPORT[name]])
        cluster["name"] = cluster["load_assignment"]["cluster_name"] = name
        cluster["type"] = "STATIC"
        address = envoy_config.endpoint_address(where)
        cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": [{"endpoint": {"address": address}}]}]
        clusters.append(cluster)
    doc["static_resources"]["clusters"] = clusters
    doc["admin"]["address"] = envoy_config.endpoint_address((LOOPBACK, admin_port))
    return doc
