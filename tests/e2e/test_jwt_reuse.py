"""jwt_reuse through a running stack with the agent SDK: under the default (reuse) a refresh may present the same
identity JWT again; under `once` that refresh is refused as replayed while the agent keeps its current token and
keeps calling through Envoy, and the next rotation of the identity file (kubelet's, in a pod) refreshes it."""

import httpx
import pytest

from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import Stack, StackPorts
from satgate_sdk import IdentityFile, SatGateAgent, SatGateError

pytestmark = pytest.mark.e2e

POLICIES = """
policies:
  - name: reusable
    provider: oidc
    issuer: http://127.0.0.1:8090
    audience: satgate
    tenant: demo
    trust_rules:
      - match: {claims: {sub: "agent-*"}}
        issue: {budget_credits: 10, ttl: 1h, scopes: ["api:read"]}
  - name: single-use
    provider: oidc
    issuer: http://127.0.0.1:8090
    audience: satgate
    tenant: demo
    jwt_reuse: once
    trust_rules:
      - match: {claims: {sub: "ci-*"}}
        issue: {budget_credits: 10, ttl: 1h, scopes: ["api:read"]}
"""


@pytest.fixture(scope="module")
def reuse_stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("jwt-reuse")
    source = state / "policies.yaml"
    source.write_text(POLICIES)
    with Stack(state / "stack", StackPorts.free(), policies_source=source) as running:
        yield running


@pytest.mark.parametrize(("subject", "reusable"), [("agent-sdk", True), ("ci-sdk", False)])
def test_the_sdk_refresh_under_each_setting(reuse_stack, tmp_path, subject, reusable):
    idp = DemoIdp.load(reuse_stack.idp_state)
    identity = tmp_path / "token"
    identity.write_text(idp.token(subject, "satgate", jti=f"{subject}-1"))
    mint = f"http://127.0.0.1:{reuse_stack.ports.mint}"
    with (
        SatGateAgent(mint, identity=IdentityFile(identity), http=httpx.Client(trust_env=False)) as agent,
        httpx.Client(base_url=reuse_stack.url, trust_env=False, auth=agent.auth()) as api,
    ):
        first = agent.token()
        if reusable:
            assert agent.refresh() != first  # the same identity JWT, exchanged again
        else:
            with pytest.raises(SatGateError) as refused:
                agent.refresh()
            assert (refused.value.status, refused.value.error) == (401, "replayed")
            assert agent.held.token == first  # kept: still valid for its hour
        assert api.get("/v1/items").status_code == 200
        identity.write_text(idp.token(subject, "satgate", jti=f"{subject}-2"))  # the platform rotates it
        assert agent.refresh() not in (first, None)
        assert api.get("/v1/items").status_code == 200
