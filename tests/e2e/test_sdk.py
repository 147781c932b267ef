"""The agent SDK against the real Mint and Envoy of a running stack."""

import time
from types import SimpleNamespace

import httpx
import pytest

from satgate_dev.demo_idp import DemoIdp
from satgate_sdk import IdentityEnv, IdentityFile, SatGateAgent, SatGateError

pytestmark = pytest.mark.e2e


@pytest.fixture
def identity_file(stack, tmp_path):
    path = tmp_path / "token"  # like a projected service-account token
    path.write_text(DemoIdp.load(stack.idp_state).token("agent-sdk-1", "satgate"))
    return path


def mint_url(stack) -> str:
    return f"http://127.0.0.1:{stack.ports.mint}"


def test_exchange_caches_and_calls_through_envoy(stack, identity_file):
    with SatGateAgent(
        mint_url(stack), identity=IdentityFile(identity_file), http=httpx.Client(trust_env=False)
    ) as agent:
        first = agent.token()
        assert agent.token() == first  # cached while fresh
        assert agent.held.tenant == "demo"
        with httpx.Client(base_url=stack.url, trust_env=False, auth=agent.auth()) as http:
            response = http.get("/v1/items")
        assert response.status_code == 200
        assert response.json()["headers"]["x-satgate-token-id"] == agent.held.token_id


def test_background_refresh_before_expiry(stack, identity_file):
    # The demo policy issues 1 h tokens; asking for a refresh 3599 s early makes it due within a second.
    agent = SatGateAgent(
        mint_url(stack),
        identity=IdentityFile(identity_file),
        refresh_before_seconds=3599,
        http=httpx.Client(trust_env=False),
    )
    with agent:
        agent.token()
        first = agent.held.token_id
        deadline = time.monotonic() + 10
        while agent.held.token_id == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert agent.held.token_id != first, "no background refresh happened"


def test_identity_file_is_reread_and_refusals_are_clear(stack, identity_file):
    with SatGateAgent(
        mint_url(stack), identity=IdentityFile(identity_file), http=httpx.Client(trust_env=False)
    ) as agent:
        agent.token()
        identity_file.write_text(DemoIdp.load(stack.idp_state).token("intruder", "satgate"))  # rotated, untrusted
        with pytest.raises(SatGateError) as refused:
            agent.refresh()
        assert (refused.value.status, refused.value.error) == (403, "no_matching_rule")
    with pytest.raises(SatGateError, match="no_identity"):
        SatGateAgent(mint_url(stack), identity=IdentityEnv("SATGATE_TEST_UNSET_VAR")).token()


def test_a_401_refreshes_once_and_retries(stack, identity_file):
    with SatGateAgent(
        mint_url(stack), identity=IdentityFile(identity_file), http=httpx.Client(trust_env=False)
    ) as agent:
        agent.token()
        stale = agent.held
        agent._held = type(stale)("not-a-token", stale.token_id, stale.expires_at, stale.tenant)  # e.g. revoked
        with httpx.Client(base_url=stack.url, trust_env=False, auth=agent.auth()) as http:
            assert http.get("/v1/items").status_code == 200
        assert agent.held.token != "not-a-token"


def test_requests_style_auth_and_delegation(stack, identity_file):
    with SatGateAgent(
        mint_url(stack), identity=IdentityFile(identity_file), http=httpx.Client(trust_env=False)
    ) as agent:
        prepared = agent.auth()(SimpleNamespace(headers={}))  # requests calls auth(PreparedRequest)
        assert prepared.headers["Authorization"] == f"Bearer {agent.token()}"
        child = agent.delegate(budget_credits=2, scopes=["api:read"], ttl="10m", label="sub-agent")
        assert child["caveats"][0].startswith("delegation = ")
        with httpx.Client(base_url=stack.url, trust_env=False) as http:
            headers = {"authorization": f"Bearer {child['token']}"}
            assert [http.get("/v1/items", headers=headers).status_code for _ in range(3)] == [200, 200, 402]


def test_configured_from_the_pod_environment(stack, identity_file, monkeypatch):
    """What deploy/kubernetes/examples/agent.yaml sets: the Mint's URL and the projected token's path."""
    env = {"SATGATE_MINT_URL": mint_url(stack), "SATGATE_IDENTITY_FILE": str(identity_file)}
    with SatGateAgent.from_env(env, http=httpx.Client(trust_env=False)) as agent:
        assert agent.held is None
        with httpx.Client(base_url=stack.url, trust_env=False, auth=agent.auth()) as http:
            assert http.get("/v1/items").status_code == 200
    monkeypatch.setenv("CI_ID_TOKEN", identity_file.read_text())
    by_variable = {"SATGATE_MINT_URL": mint_url(stack), "SATGATE_IDENTITY_ENV": "CI_ID_TOKEN"}
    with SatGateAgent.from_env(by_variable, http=httpx.Client(trust_env=False)) as agent:
        assert agent.token()
    for missing, error in (({}, "no_mint"), ({"SATGATE_MINT_URL": mint_url(stack)}, "no_identity")):
        with pytest.raises(SatGateError) as refused:
            SatGateAgent.from_env(missing)
        assert refused.value.error == error


@pytest.mark.parametrize("suffix", ["", "/", "/api/mint/exchange", "/api/mint/exchange/"])
def test_the_mint_url_may_be_the_base_or_the_full_exchange_url(stack, identity_file, suffix):
    """The seed guide's pod spec sets SATGATE_MINT_URL to the full exchange URL."""
    env = {"SATGATE_MINT_URL": mint_url(stack) + suffix, "SATGATE_IDENTITY_FILE": str(identity_file)}
    with SatGateAgent.from_env(env, http=httpx.Client(trust_env=False)) as agent:
        assert agent.held is None
        assert agent.token()


def test_refusals_carry_what_the_server_said(stack, identity_file):
    wrong_place = f"http://127.0.0.1:{stack.ports.envoy_admin}/not-the-mint"  # not the Mint: no JSON of ours
    agent = SatGateAgent(wrong_place, identity=IdentityFile(identity_file), http=httpx.Client(trust_env=False))
    with agent, pytest.raises(SatGateError) as refused:
        agent.token()
    assert refused.value.status == 404 and "is SATGATE_MINT_URL the Mint's address?" in refused.value.message
    assert "answered" in refused.value.message and "/not-the-mint/api/mint/exchange" in refused.value.message
    identity_file.write_text("not a jwt")
    agent = SatGateAgent(mint_url(stack), identity=IdentityFile(identity_file), http=httpx.Client(trust_env=False))
    with agent, pytest.raises(SatGateError) as refused:
        agent.token()
    assert refused.value.status == 401 and refused.value.message  # the Mint's own message, never empty
