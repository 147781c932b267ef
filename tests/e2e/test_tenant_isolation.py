"""A tenant admin attacking another tenant through the Mint (SPEC v2.2: Tenants and issuers), with real processes:
the stack's Mint, authz and Envoy, the demo tenant's real OIDC issuer, and the attacker's own issuer."""

import subprocess
import sys
import time

import httpx
import pytest

from satgate.timefmt import format_utc
from satgate.tokens.mint import mint
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import LOOPBACK, free_port, http_ok

pytestmark = pytest.mark.e2e


@pytest.fixture
def attackers_idp(stack, tmp_path):
    """An issuer the attacker runs, claiming the demo tenant's issuer URL, with keys of its own."""
    state, port = tmp_path / "evil-idp.json", free_port()
    DemoIdp(issuer=stack.issuer).save(state)
    argv = [sys.executable, "-m", "satgate_cli", "demo-idp", "--state-file", str(state), "--port", str(port)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not http_ok(f"http://{LOOPBACK}:{port}/jwks"):
        assert time.monotonic() < deadline and process.poll() is None, "the attacker's issuer did not start"
        time.sleep(0.05)
    yield DemoIdp.load(state), f"http://{LOOPBACK}:{port}/jwks"
    process.terminate()
    process.wait(timeout=10)


def test_a_tenant_admin_cannot_point_another_tenants_issuer_at_its_own_keys(stack, stack_keyring, attackers_idp):
    evil_idp, evil_jwks = attackers_idp
    evil_admin = mint(stack_keyring, "evil", [("expires", format_utc(time.time() + 600)), ("scope", "satgate:admin")])
    captured = {
        "name": "capture",
        "provider": "oidc",
        "issuer": stack.issuer,  # the demo tenant's issuer ...
        "jwks_uri": evil_jwks,  # ... verified with the attacker's keys
        "audience": "satgate",
        "trust_rules": [{"match": {"claims": {"sub": "*"}}, "issue": {"budget_credits": 50, "scopes": ["api:*"]}}],
    }
    mint_url = f"http://{LOOPBACK}:{stack.ports.mint}"
    with httpx.Client(base_url=mint_url, trust_env=False, timeout=10) as http:
        created = http.post(
            "/api/admin/policies", headers={"Authorization": f"Bearer {evil_admin.token}"}, json={"document": captured}
        )
        assert (created.status_code, created.json()["error"]) == (409, "overlap")
        assert "demo" not in created.text and "local-demo" not in created.text  # names no one

        forged = http.post("/api/mint/exchange", json={"credentials": evil_idp.token("agent-7", "satgate")})
        assert (forged.status_code, forged.json()["error"]) == (401, "invalid_identity")

        genuine = http.post(
            "/api/mint/exchange", json={"credentials": DemoIdp.load(stack.idp_state).token("agent-7", "satgate")}
        )
        assert (genuine.status_code, genuine.json()["tenant"]) == (200, "demo")
    allowed = httpx.get(
        f"{stack.url}/v1/items", headers={"Authorization": f"Bearer {genuine.json()['token']}"}, trust_env=False
    )
    assert allowed.status_code == 200
