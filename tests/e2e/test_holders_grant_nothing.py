"""Each escalation of the security review, through real Envoy and the real Mint: a holder appends to (or asks the
Mint to delegate) a token the issuer granted nothing, and gains nothing. Idempotency replays on both stores."""

import uuid

import httpx
import pytest
import yaml

from satgate.keyring import load_keyring
from satgate.tokens.mint import attenuate, mint
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import DEMO_ISSUER_IN_EXAMPLE, HTTP_ROUTES, Stack, StackPorts
from satgate_dev.redis_server import RedisServer

pytestmark = pytest.mark.e2e

# As the seed documents' policies issue: a budget and attributes, no scope.
SCOPELESS_POLICY = f"""
policies:
  - name: research
    provider: oidc
    issuer: {DEMO_ISSUER_IN_EXAMPLE}
    audience: satgate
    tenant: acme
    trust_rules:
      - match: {{claims: {{sub: "agent-*"}}}}
        issue:
          budget_credits: 100
          ttl: 1h
          caveats: {{department: research}}
"""
CONFIG = {
    "authz": {
        "attributes": ["department"],
        # /v1/eng/ is for the eng department only (its scope api:read comes from envoy.yaml's /v1/ route)
        "routes": [{"match": {"path_prefix": "/v1/eng/"}, "settings": {"require.department": "eng"}}],
    },
}


def config_for(transport: str) -> dict:
    """On HTTP the route table is all there is (no context_extensions): the /v1/eng/ rule carries the scope that
    envoy.yaml's /v1/ route adds on gRPC, and the shipped HTTP routes follow it."""
    if transport == "grpc":
        return CONFIG
    shipped = yaml.safe_load(HTTP_ROUTES.read_text())["routes"]
    eng = {"match": {"path_prefix": "/v1/eng/"}, "settings": {"scope": "api:read", "require.department": "eng"}}
    return {"authz": {**CONFIG["authz"], "routes": [eng, *shipped]}}


@pytest.fixture(scope="module")
def grants_stack(tmp_path_factory, transport):
    state = tmp_path_factory.mktemp("grants")
    policies = state / "policies-source.yaml"
    policies.write_text(SCOPELESS_POLICY)
    overrides = config_for(transport)
    with Stack(
        state / "stack", StackPorts.free(), config_overrides=overrides, policies_source=policies, transport=transport
    ) as running:
        yield running


@pytest.fixture
def http():
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **headers}


def exchanged(stack: Stack, http: httpx.Client, subject: str = "agent-1") -> str:
    jwt = DemoIdp.load(stack.idp_state).token(subject, "satgate")
    response = http.post(f"http://127.0.0.1:{stack.ports.mint}/api/mint/exchange", json={"credentials": jwt})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def mint_url(stack: Stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.ports.mint}{path}"


def test_an_appended_admin_scope_does_not_open_the_admin_api(grants_stack, http):
    token = exchanged(grants_stack, http)
    escalated = attenuate(token, [("scope", "satgate:admin")])
    for t in (token, escalated):
        response = http.get(mint_url(grants_stack, "/api/admin/audit"), headers=bearer(t))
        assert (response.status_code, response.json()["error"]) == (403, "insufficient_scope")
    victim = exchanged(grants_stack, http, "agent-2")
    victim_id = http.post(mint_url(grants_stack, "/api/mint/verify"), headers=bearer(victim)).json()["token_id"]
    revoke = http.post(mint_url(grants_stack, "/api/admin/revoke"), headers=bearer(escalated), json={"id": victim_id})
    assert revoke.status_code == 403
    revoke_policy = http.post(mint_url(grants_stack, "/api/admin/policies/research/revoke"), headers=bearer(escalated))
    assert revoke_policy.status_code == 403
    assert http.post(mint_url(grants_stack, "/api/mint/verify"), headers=bearer(victim)).json()["valid"] is True


def test_a_delegated_admin_scope_does_not_open_the_admin_api(grants_stack, http):
    token = exchanged(grants_stack, http)
    child = http.post(
        mint_url(grants_stack, "/api/mint/delegate"), headers=bearer(token), json={"scopes": ["satgate:admin"]}
    )
    assert child.status_code == 200, child.text
    response = http.get(mint_url(grants_stack, "/api/admin/audit"), headers=bearer(child.json()["token"]))
    assert (response.status_code, response.json()["error"]) == (403, "insufficient_scope")


def test_a_granted_admin_still_reads_the_audit_log(grants_stack, http):
    admin = mint(load_keyring(grants_stack.state_dir / "keyring.json"), "acme", [("scope", "satgate:admin")]).token
    assert http.get(mint_url(grants_stack, "/api/admin/audit"), headers=bearer(admin)).status_code == 200


def test_an_appended_scope_does_not_open_a_scoped_route(grants_stack, http):
    token = exchanged(grants_stack, http)
    for t in (token, attenuate(token, [("scope", "api:*")])):
        response = http.get(f"{grants_stack.url}/v1/items", headers=bearer(t))
        assert (response.status_code, response.json()["error"]) == (403, "insufficient_scope")


def test_forged_attributes_neither_pass_require_nor_reach_the_upstream(grants_stack, http):
    keyring = load_keyring(grants_stack.state_dir / "keyring.json")
    reader = mint(keyring, "acme", [("scope", "api:read"), ("budget", "10")]).token
    forged = attenuate(reader, [("department", "eng")], attribute_keys=["department"])
    response = http.get(f"{grants_stack.url}/v1/eng/report", headers=bearer(forged))
    assert (response.status_code, response.json()["caveat"]) == (403, "require.department")
    elsewhere = http.get(f"{grants_stack.url}/v1/items", headers=bearer(forged))
    assert elsewhere.status_code == 200
    assert "x-satgate-attr-department" not in elsewhere.json()["headers"]
    eng = mint(keyring, "acme", [("scope", "api:read"), ("department", "eng")], attribute_keys=["department"]).token
    allowed = http.get(f"{grants_stack.url}/v1/eng/report", headers=bearer(eng))
    assert allowed.status_code == 200
    assert allowed.json()["headers"]["x-satgate-attr-department"] == "eng"


def test_mint_delegated_attributes_do_not_pass_require(grants_stack, http):
    keyring = load_keyring(grants_stack.state_dir / "keyring.json")
    reader = mint(keyring, "acme", [("scope", "api:read"), ("budget", "10")]).token
    child = http.post(
        mint_url(grants_stack, "/api/mint/delegate"), headers=bearer(reader), json={"caveats": {"department": "eng"}}
    )
    assert child.status_code == 200, child.text
    response = http.get(f"{grants_stack.url}/v1/eng/report", headers=bearer(child.json()["token"]))
    assert (response.status_code, response.json()["caveat"]) == (403, "require.department")


def test_the_seed_flow_still_reaches_unscoped_routes_and_the_mcp_route(grants_stack, http):
    token = exchanged(grants_stack, http)
    response = http.get(f"{grants_stack.url}/public/page", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["headers"]["x-satgate-attr-department"] == "research"  # sealed by the Mint
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "search", "arguments": {}}}
    tool = http.post(f"{grants_stack.url}/mcp", headers=bearer(token), json=call)
    assert tool.status_code == 200, tool.text
    assert tool.json()["headers"]["x-satgate-credits-charged"] == "1"


@pytest.mark.parametrize("name", ["x-satgate_tenant", "x_satgate_tenant"])
def test_underscore_header_variants_never_reach_the_upstream(grants_stack, http, name):
    keyring = load_keyring(grants_stack.state_dir / "keyring.json")
    reader = mint(keyring, "acme", [("scope", "api:read")]).token
    response = http.get(f"{grants_stack.url}/v1/items", headers=bearer(reader, **{name: "evil,demo"}))
    assert response.status_code == 400  # headers_with_underscores_action: REJECT_REQUEST


# ------------------------------------------------------------------------------- idempotency on both stores
@pytest.fixture(scope="module", params=["sqlite", "redis"])
def store_stack(request, tmp_path_factory):
    state = tmp_path_factory.mktemp(f"replay-{request.param}")
    redis = RedisServer(state / "redis").start() if request.param == "redis" else None
    overrides = {"ledger": redis.url} if redis else {}
    try:
        with Stack(state / "stack", StackPorts.free(), config_overrides=overrides) as running:
            yield running
    finally:
        if redis is not None:
            redis.stop()


def test_a_cheap_request_id_replayed_on_premium_requests_pays_full_price(store_stack, http):
    token = mint(load_keyring(store_stack.state_dir / "keyring.json"), "acme", [("scope", "api:*"), ("budget", "3")])
    request_id = str(uuid.uuid4())
    first = http.get(f"{store_stack.url}/v1/items", headers=bearer(token.token, **{"x-request-id": request_id}))
    assert (first.status_code, first.headers["x-satgate-credits-remaining"]) == (200, "2")
    replays = [
        http.post(f"{store_stack.url}/v1/premium/r{i}", headers=bearer(token.token, **{"x-request-id": request_id}))
        for i in range(30)
    ]
    assert {r.status_code for r in replays} == {402}  # cost 5 each, 2 credits left: none is free
    retry = http.get(f"{store_stack.url}/v1/items", headers=bearer(token.token, **{"x-request-id": request_id}))
    assert (retry.status_code, retry.headers["x-satgate-credits-remaining"]) == (200, "2")  # a true retry: once
