"""envoy/envoy-http.yaml is envoy/envoy.yaml on the HTTP ext_authz transport: the same listener safety, routes and
clusters, and a route table (examples/envoy-http-routes.yaml) saying what envoy.yaml's context_extensions say."""

import copy
import dataclasses

import yaml

from satgate.config import AuthzConfig
from satgate.routes import RouteSettings
from satgate_dev import envoy_config
from satgate_dev.devstack import HTTP_ROUTES


def load(path):
    return yaml.safe_load(path.read_text())


def hcm_of(doc):
    return doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def ext_authz_of(doc):
    return next(f for f in hcm_of(doc)["http_filters"] if f["name"] == "envoy.filters.http.ext_authz")["typed_config"]


def without_transport(doc):
    """What must be equal on both transports: everything but the authz call itself and its cluster's protocol."""
    doc = copy.deepcopy(doc)
    hcm = hcm_of(doc)
    hcm.pop("access_log")  # same JSON keys, metadata read from each transport's keys (checked below)
    for f in hcm["http_filters"]:
        if f["name"] == "envoy.filters.http.ext_authz":
            f["typed_config"] = {}
    for vhost in hcm["route_config"]["virtual_hosts"]:
        vhost.pop("typed_per_filter_config", None)
        for route in vhost["routes"]:
            settings = route.get("typed_per_filter_config", {}).get("envoy.filters.http.ext_authz", {})
            check = settings.get("check_settings", {})
            check.pop("context_extensions", None)
            check.get("with_request_body", {}).pop("pack_as_bytes", None)  # a gRPC-only field
            if settings and not settings.get("disabled") and not check.get("with_request_body"):
                route.pop("typed_per_filter_config")
    # the HTTP transport's access-log stream needs a gRPC cluster of its own (checked below)
    doc["static_resources"]["clusters"] = [c for c in doc["static_resources"]["clusters"] if c["name"] != "satgate_als"]
    authz = next(c for c in doc["static_resources"]["clusters"] if c["name"] == "satgate_authz")
    for key in ("typed_extension_protocol_options", "health_checks", "circuit_breakers", "load_assignment"):
        authz.pop(key, None)
    return doc


def test_both_configs_are_the_same_but_for_the_transport():
    grpc, http = load(envoy_config.SHIPPED_CONFIG), load(envoy_config.SHIPPED_HTTP_CONFIG)
    assert without_transport(grpc) == without_transport(http)
    assert set(hcm_of(grpc)["access_log"][0]["typed_config"]["log_format"]["json_format"]) == set(
        hcm_of(http)["access_log"][0]["typed_config"]["log_format"]["json_format"]
    )
    grpc_als, http_als = (hcm_of(doc)["access_log"][1] for doc in (grpc, http))
    assert grpc_als["filter"]["metadata_filter"]["matcher"]["path"] == [{"key": "refund"}]
    assert http_als["filter"]["metadata_filter"]["matcher"]["path"] == [{"key": "x-satgate-log-refund"}]
    assert grpc_als["typed_config"]["common_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] == "satgate_authz"
    assert http_als["typed_config"]["common_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] == "satgate_als"
    authz = ext_authz_of(http)
    assert authz["failure_mode_allow"] is False and authz["status_on_error"]["code"] == "ServiceUnavailable"
    assert authz["http_service"]["server_uri"]["timeout"] == ext_authz_of(grpc)["grpc_service"]["timeout"]
    added = {h["key"]: h["value"] for h in authz["http_service"]["authorization_request"]["headers_to_add"]}
    timeout_ms = int(float(authz["http_service"]["server_uri"]["timeout"].rstrip("s")) * 1000)
    assert added["x-satgate-timeout-ms"] == str(timeout_ms)  # the deadline the server keeps is Envoy's timeout


def test_the_http_route_table_says_what_the_grpc_context_extensions_say():
    grpc = load(envoy_config.SHIPPED_CONFIG)
    vhost = hcm_of(grpc)["route_config"]["virtual_hosts"][0]
    table = AuthzConfig.model_validate({"routes": load(HTTP_ROUTES)["routes"]}).route_table()
    default = vhost["typed_per_filter_config"]["envoy.filters.http.ext_authz"]["check_settings"]["context_extensions"]
    default_cost = AuthzConfig().default_cost
    for route in vhost["routes"]:
        prefix = route["match"].get("prefix")
        settings = route.get("typed_per_filter_config", {}).get("envoy.filters.http.ext_authz", {})
        if prefix is None or settings.get("disabled"):
            continue
        extensions = {**default, **settings.get("check_settings", {}).get("context_extensions", {})}
        from_table = table.settings_for("any.host", f"{prefix.rstrip('/')}/x", "GET", {})
        if from_table.cost is None:
            from_table = dataclasses.replace(from_table, cost=default_cost)
        assert from_table == RouteSettings.from_mapping(extensions), prefix


def test_a_test_stack_can_set_the_ext_authz_timeout_on_both_transports():
    grpc = envoy_config.set_ext_authz_timeout(load(envoy_config.SHIPPED_CONFIG), 10_000)
    assert ext_authz_of(grpc)["grpc_service"]["timeout"] == "10.0s"
    http = envoy_config.set_ext_authz_timeout(load(envoy_config.SHIPPED_HTTP_CONFIG), 10_000)
    service = ext_authz_of(http)["http_service"]
    assert service["server_uri"]["timeout"] == "10.0s"
    headers = {h["key"]: h["value"] for h in service["authorization_request"]["headers_to_add"]}
    assert headers["x-satgate-timeout-ms"] == "10000"  # the server's deadline follows Envoy's timeout
