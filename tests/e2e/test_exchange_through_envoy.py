"""The agent's whole path: workload JWT → Mint exchange → call through real Envoy, budget from the policy."""

import httpx
import pytest

from satgate_dev.demo_idp import DemoIdp

pytestmark = pytest.mark.e2e


def test_exchanged_token_calls_through_envoy_until_the_policy_budget_is_spent(stack):
    jwt = DemoIdp.load(stack.idp_state).token("agent-42", "satgate")
    mint_url = f"http://127.0.0.1:{stack.ports.mint}"
    with httpx.Client(trust_env=False, timeout=10) as http:
        exchanged = http.post(f"{mint_url}/api/mint/exchange", json={"credentials": jwt})
        assert exchanged.status_code == 200, exchanged.text
        body = exchanged.json()
        assert (body["tenant"], body["policy"], body["budget_credits"]) == ("demo", "local-demo", 50)
        headers = {"authorization": f"Bearer {body['token']}"}

        first = http.get(f"{stack.url}/v1/items", headers=headers)
        assert first.status_code == 200
        assert first.json()["headers"]["x-satgate-tenant"] == "demo"
        assert first.headers["x-satgate-credits-remaining"] == "49"
        assert http.get(f"{stack.url}/v1/premium/x", headers=headers).status_code == 403  # scope api:read,api:write
        statuses = [http.post(f"{stack.url}/v1/write/x", headers=headers).status_code for _ in range(25)]
        assert statuses.count(200) == 24  # 49 credits at 2 per write
        assert statuses[-1] == 402

        verified = http.post(f"{mint_url}/api/mint/verify", headers=headers).json()
        assert (verified["valid"], verified["remaining"]) == (True, 1)


def test_mint_refuses_identities_no_rule_trusts(stack):
    jwt = DemoIdp.load(stack.idp_state).token("intruder", "satgate")
    response = httpx.post(
        f"http://127.0.0.1:{stack.ports.mint}/api/mint/exchange", json={"credentials": jwt}, trust_env=False
    )
    assert (response.status_code, response.json()["error"]) == (403, "no_matching_rule")
