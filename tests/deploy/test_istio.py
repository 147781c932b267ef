"""deploy/istio: Istio's own CRD schemas (@kubernetes-models/istio, from npm) and the wiring between the mesh
config, the AuthorizationPolicies, the authz Service and the route table."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from satgate.config import load_config
from satgate_dev import envoy_config

from .manifests import ISTIO, extension_providers, kubernetes_objects, load_all, satgate_configmap, the

SCHEMA_CHECK = Path(__file__).parent / "istio_schema"
POLICIES = {d["metadata"]["name"]: d for d in load_all(ISTIO / "authorization-policy.yaml")}
(OPERATOR,) = load_all(ISTIO / "mesh-config.yaml")
(HEADER_FILTER,) = load_all(ISTIO / "envoy-filter-headers.yaml")
(MINT_ADMIN,) = load_all(ISTIO / "mint-admin-authorization.yaml")
PROVIDERS = extension_providers()


def istio_schema_errors(documents: list[dict]) -> list[dict]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Istio CRD schemas come from npm (@kubernetes-models/istio)")
    assert (SCHEMA_CHECK / "node_modules").is_dir(), "run ./dev test (it runs npm ci in tests/deploy/istio_schema)"
    result = subprocess.run(
        ["node", str(SCHEMA_CHECK / "validate.mjs")],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_istio_resources_match_istios_crd_schemas():
    documents = [*POLICIES.values(), OPERATOR, HEADER_FILTER, MINT_ADMIN]
    results = istio_schema_errors(documents)
    assert [r["kind"] for r in results] == [d["kind"] for d in documents]
    assert [r for r in results if r["error"]] == []


def test_the_mesh_refuses_underscore_headers_as_the_shipped_envoy_config_does():
    shipped = yaml.safe_load(envoy_config.SHIPPED_CONFIG.read_text())
    hcm = shipped["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    (patch,) = HEADER_FILTER["spec"]["configPatches"]
    assert patch["match"]["listener"]["filterChain"]["filter"]["name"] == hcm["name"]
    merged = patch["patch"]["value"]["typed_config"]
    assert merged["@type"] == hcm["typed_config"]["@type"]
    assert merged["common_http_protocol_options"] == hcm["typed_config"]["common_http_protocol_options"]
    assert merged["common_http_protocol_options"]["headers_with_underscores_action"] == "REJECT_REQUEST"


def test_the_schema_check_catches_a_broken_policy():
    broken = json.loads(json.dumps(POLICIES["satgate-api"]))
    broken["spec"]["action"] = "EXTERNAL"
    broken["spec"]["rules"][0]["to"][0]["operation"]["notPaths"] = "/healthz"  # must be a list
    (result,) = istio_schema_errors([broken])
    assert "action" in result["error"] and "notPaths" in result["error"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RequestBody(_Strict):
    maxRequestBytes: int = Field(gt=0)  # Istio's field names
    allowPartialMessage: bool
    packAsBytes: bool


class ExtAuthzGrpcProvider(_Strict):
    """MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationGrpcProvider (istio.io/api mesh/v1alpha1/config.proto):
    every field it has, so a misspelt one is an error here instead of silently ignored by istiod."""

    service: str
    port: int = Field(gt=0, lt=65536)
    timeout: str = Field(pattern=r"^\d+(\.\d+)?(ms|s)$")
    failOpen: bool
    statusOnError: Literal["503"]  # the SPEC's answer when the authz server cannot be reached
    includeRequestBodyInCheck: RequestBody | None = None


class ExtAuthzHttpProvider(_Strict):
    """MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationHttpProvider: every field it has."""

    service: str
    port: int = Field(gt=0, lt=65536)
    timeout: str = Field(pattern=r"^\d+(\.\d+)?(ms|s)$")
    pathPrefix: str | None = None
    failOpen: bool
    statusOnError: Literal["503"]
    includeRequestHeadersInCheck: list[str] = []
    includeAdditionalHeadersInCheck: dict[str, str] = {}
    includeRequestBodyInCheck: RequestBody | None = None
    headersToUpstreamOnAllow: list[str] = []
    headersToDownstreamOnDeny: list[str] = []
    headersToDownstreamOnAllow: list[str] = []


HTTP_PROVIDERS = extension_providers("envoyExtAuthzHttp")


def test_extension_providers_use_only_istios_fields_and_fail_closed():
    for name, provider in PROVIDERS.items():
        checked = ExtAuthzGrpcProvider.model_validate(provider)
        assert checked.failOpen is False, name
    assert HTTP_PROVIDERS, "the HTTP transport has an Istio provider"
    for name, provider in HTTP_PROVIDERS.items():
        assert ExtAuthzHttpProvider.model_validate(provider).failOpen is False, name


def test_the_http_provider_says_what_envoy_http_yaml_says():
    (envoy,) = load_all(envoy_config.SHIPPED_HTTP_CONFIG)
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    authz = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.ext_authz")["typed_config"]
    service = authz["http_service"]
    provider = HTTP_PROVIDERS["satgate-http"]
    assert provider["pathPrefix"] == service["path_prefix"]
    added = {h["key"]: h["value"] for h in service["authorization_request"]["headers_to_add"]}
    assert provider["includeAdditionalHeadersInCheck"] == added
    upstream = service["authorization_response"]["allowed_upstream_headers"]["patterns"]
    assert provider["headersToUpstreamOnAllow"] == [p.get("exact") or f"{p['prefix']}*" for p in upstream]
    deny = service["authorization_response"]["allowed_client_headers"]["patterns"]
    assert provider["headersToDownstreamOnDeny"] == [p["exact"] for p in deny]
    service_object = the(kubernetes_objects("authz.yaml"), "Service")
    http_port = next(p["port"] for p in service_object["spec"]["ports"] if p["name"] == "http-authz")
    assert provider["port"] == http_port


def test_a_misspelt_provider_field_is_caught():
    with pytest.raises(ValueError, match="failopen"):
        ExtAuthzGrpcProvider.model_validate({**PROVIDERS["satgate"], "failopen": False})


def test_providers_point_at_the_authz_service():
    service = the(kubernetes_objects("authz.yaml"), "Service")
    namespace = the(kubernetes_objects("namespace.yaml"), "Namespace")
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    for provider in PROVIDERS.values():
        assert provider["service"] == f"{service['metadata']['name']}.{namespace['metadata']['name']}.svc.cluster.local"
        assert provider["port"] == grpc_port


def test_the_mcp_provider_buffers_bodies_like_the_envoy_config():
    (envoy,) = load_all(envoy_config.SHIPPED_CONFIG)
    routes = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    mcp_route = next(
        r for r in routes["route_config"]["virtual_hosts"][0]["routes"] if r["match"].get("prefix") == "/mcp"
    )
    body = mcp_route["typed_per_filter_config"]["envoy.filters.http.ext_authz"]["check_settings"]["with_request_body"]
    assert PROVIDERS["satgate-mcp"]["includeRequestBodyInCheck"] == {
        "maxRequestBytes": body["max_request_bytes"],
        "allowPartialMessage": body["allow_partial_message"],
        "packAsBytes": body["pack_as_bytes"],
    }
    assert "includeRequestBodyInCheck" not in PROVIDERS["satgate"]  # API requests are not buffered


def test_policies_are_custom_and_name_a_configured_provider():
    for name, policy in POLICIES.items():
        assert policy["spec"]["action"] == "CUSTOM", name
        assert policy["spec"]["provider"]["name"] in PROVIDERS, name
        assert policy["metadata"]["namespace"] == OPERATOR["metadata"]["namespace"]  # root namespace: mesh-wide
    assert POLICIES["satgate-mcp"]["spec"]["provider"]["name"] == "satgate-mcp"
    assert POLICIES["satgate-api"]["spec"]["provider"]["name"] == "satgate"


def test_the_route_table_prices_what_the_mcp_policy_sends(tmp_path):
    (tmp_path / "satgate.yaml").write_text(satgate_configmap()["satgate.yaml"])
    table = load_config(tmp_path / "satgate.yaml").authz.route_table()
    for path in POLICIES["satgate-mcp"]["spec"]["rules"][0]["to"][0]["operation"]["paths"]:
        assert table.settings_for("mcp.agents.svc", path.replace("*", "messages"), "POST", {}).mcp, path
    assert table.settings_for("api", "/v1/premium/report", "GET", {}).scopes == ("api:premium",)


def test_helm_values_carry_the_same_mesh_config():
    (values,) = load_all(ISTIO / "istiod-values.yaml")
    assert values == {"meshConfig": OPERATOR["spec"]["meshConfig"]}


def test_the_demo_api_opts_in_with_the_policy_label():
    deployment = the(kubernetes_objects("examples/demo-api.yaml"), "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert POLICIES["satgate-api"]["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_mint_admin_policy_admits_operators_to_the_admin_ports_only():
    settings = load_config_from_configmap()
    port = lambda address: address.rpartition(":")[2]  # noqa: E731
    assert MINT_ADMIN["spec"]["action"] == "ALLOW"
    assert MINT_ADMIN["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "satgate-mint"}
    everyone, operators = MINT_ADMIN["spec"]["rules"]
    assert "from" not in everyone
    assert everyone["to"][0]["operation"]["ports"] == [port(settings.mint.listen), port(settings.mint.grpc_listen)]
    assert operators["from"][0]["source"]["principals"]
    assert operators["to"][0]["operation"]["ports"] == [
        port(settings.mint.admin_listen),
        port(settings.mint.admin_grpc_listen),
    ]


def load_config_from_configmap():
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "satgate.yaml"
        path.write_text(satgate_configmap()["satgate.yaml"])
        return load_config(path)


def test_the_mesh_normalises_paths_as_the_shipped_envoy_config_does():
    """Istio's default (BASE) keeps %2F, %5C and // in the path (CVE-2021-31920): the mesh decodes escaped slashes
    and merges slashes, which is what envoy/envoy.yaml's listener does (it redirects to the decoded path)."""
    assert OPERATOR["spec"]["meshConfig"]["pathNormalization"] == {"normalization": "DECODE_AND_MERGE_SLASHES"}
    shipped = yaml.safe_load(envoy_config.SHIPPED_CONFIG.read_text())
    hcm = shipped["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert (hcm["normalize_path"], hcm["merge_slashes"]) == (True, True)
    assert hcm["path_with_escaped_slashes_action"] in ("UNESCAPE_AND_REDIRECT", "UNESCAPE_AND_FORWARD")
