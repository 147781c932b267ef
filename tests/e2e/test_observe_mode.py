"""Observe mode through real Envoy on both ext_authz transports: a route in observe mode lets a 403 and a 402
through to the upstream, which sees the decision in x-satgate-observed-decision; the decision is logged with
enforced=false, and the observed debit is spent as it would be, so the same token is refused where enforced."""

import json

import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import Stack, StackPorts

pytestmark = pytest.mark.e2e

ROUTES = [
    {"match": {"host": "admin.example.com", "path_prefix": "/hosted/"}, "settings": {"scope": "api:admin"}},
    {"match": {"path_prefix": "/observed/admin/"}, "settings": {"mode": "observe", "scope": "api:admin"}},
    {"match": {"path_prefix": "/observed/"}, "settings": {"mode": "observe"}},
    {"match": {"path_prefix": "/v1/"}, "settings": {"scope": "api:read"}},  # enforced (on gRPC envoy.yaml's too)
]


@pytest.fixture(scope="module")
def observe_stack(tmp_path_factory, transport):
    overrides = {"authz": {"routes": ROUTES, "decision_log": "all"}}
    with Stack(
        tmp_path_factory.mktemp("observe"), StackPorts.free(), config_overrides=overrides, transport=transport
    ) as s:
        yield s


def test_an_observed_route_lets_refusals_through_and_records_them(observe_stack):
    keyring = load_keyring(observe_stack.state_dir / "keyring.json")
    token = mint(keyring, "demo", [("scope", "api:read"), ("budget", "1")]).token
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=observe_stack.url, trust_env=False, timeout=10) as client:

        def seen(path: str, **extra: str) -> tuple[int, dict]:
            response = client.get(path, headers={**headers, **extra})
            return response.status_code, response.json().get("headers", {}) if response.status_code == 200 else {}

        status, upstream = seen("/observed/admin/report")
        assert (status, upstream["x-satgate-observed-decision"]) == (200, "403 insufficient_scope")
        assert "authorization" not in upstream
        status, upstream = seen("/observed/items")
        assert (status, upstream["x-satgate-observed-decision"], upstream["x-satgate-credits-charged"]) == (
            200,
            "allow",
            "1",
        )
        status, upstream = seen("/observed/items", **{"x-satgate-observed-decision": "allow"})  # a client's copy
        assert (status, upstream["x-satgate-observed-decision"]) == (200, "402 budget_exhausted")
        assert client.get("/v1/items", headers=headers).status_code == 402  # observed debits were real
        anonymous = client.get("/observed/items")
        assert anonymous.status_code == 200
        assert anonymous.json()["headers"]["x-satgate-observed-decision"] == "401 missing_token"

    logged = [json.loads(line) for line in observe_stack.log_tail("authz", 200).splitlines() if '"decision"' in line]
    observed = [(d["route"], d["status"], d.get("enforced", True)) for d in logged]
    assert ("/observed/admin/report", 403, False) in observed
    assert ("/observed/items", 402, False) in observed and ("/observed/items", 401, False) in observed
    assert ("/v1/items", 402, True) in observed


def test_a_trailing_dot_host_meets_the_same_host_rule_and_hosts_caveat(observe_stack):
    """`admin.example.com.` is `admin.example.com` (DNS's absolute form): the host rule and the `hosts` caveat see
    one host, with or without the dot and a port."""
    keyring = load_keyring(observe_stack.state_dir / "keyring.json")
    reader = mint(keyring, "demo", [("scope", "api:read"), ("budget", "100")]).token
    pinned = mint(keyring, "demo", [("scope", "api:*"), ("hosts", "admin.example.com"), ("budget", "100")]).token
    with httpx.Client(base_url=observe_stack.url, trust_env=False, timeout=10) as client:

        def status(token: str, host: str) -> int:
            return client.get("/hosted/x", headers={"authorization": f"Bearer {token}", "host": host}).status_code

        for host in ("admin.example.com", "admin.example.com.", "ADMIN.example.com.:443"):
            assert status(reader, host) == 403, host  # the host rule needs api:admin
            assert status(pinned, host) == 200, host  # the hosts caveat holds


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("/observed/%2e%2e;/v1/items", {400}),  # ambiguous: refused in observe mode as in enforce mode
        ("/observed/%252e%252e/v1/items", {400}),
        ("/observed/..;/v1/items", {400, 401}),  # Envoy may resolve it to /v1/items first: the enforced route's
    ],
)
def test_an_ambiguous_path_is_refused_on_an_observed_route_too(observe_stack, path, refused):
    """Observing a path an upstream may read as another (Tomcat's `..;`) would let it reach an enforced route's
    upstream with no token: that refusal protects the path itself, so it holds in every mode."""
    with httpx.Client(base_url=observe_stack.url, trust_env=False, timeout=10) as client:
        response = client.get(path)
    assert response.status_code in refused, response.text
