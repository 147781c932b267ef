"""A trust rule's budget is a ceiling (SPEC v2.2, identity budgets), through real processes: the Mint, two authz
replicas spending at once behind real Envoy, the stack's OIDC issuer, the agent SDK — on SQLite and on Redis.
Re-exchanging, exchanging concurrently and refreshing never add credits the rule did not grant."""

import asyncio
import time

import aiohttp
import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.timefmt import format_utc
from satgate.tokens.mint import mint
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import LOOPBACK, Stack, StackPorts
from satgate_dev.redis_server import RedisServer
from satgate_sdk import SatGateAgent

pytestmark = pytest.mark.e2e

POLICIES = """\
policies:
  - name: agents
    provider: oidc
    issuer: {issuer}
    audience: satgate
    tenant: demo
    trust_rules:
      - name: per-agent
        match: {{claims: {{sub: "agent-*"}}}}
        issue: {{budget_credits: 20, ttl: 1h, scopes: ["api:read"]}}
      - name: per-run
        match: {{claims: {{sub: "ci-*"}}}}
        issue: {{budget_credits: 6, ttl: 1h, scopes: ["api:read"], budget_per: "{{{{ .Claims.run_id }}}}"}}
      - name: pool
        match: {{claims: {{sub: "pool-*"}}}}
        issue: {{budget_credits: 8, ttl: 1h, scopes: ["api:read"], budget_per: policy}}
      - name: legacy
        match: {{claims: {{sub: "legacy-*"}}}}
        issue: {{budget_credits: 3, ttl: 1h, scopes: ["api:read"], budget_per: token}}
"""


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def stack(request, tmp_path_factory):
    ports = StackPorts.free()
    policies = tmp_path_factory.mktemp("policies") / "agents.yaml"
    policies.write_text(POLICIES.format(issuer=f"http://{LOOPBACK}:{ports.idp}"))
    overrides, redis = {}, None
    if request.param == "redis":
        redis = RedisServer(tmp_path_factory.mktemp("redis"), persistent=True).start()
        overrides["ledger"] = redis.url
    running = Stack(
        tmp_path_factory.mktemp("stack"), ports, config_overrides=overrides, authz_replicas=2, policies_path=policies
    )
    try:
        with running:
            yield running
    finally:
        if redis is not None:
            redis.stop()


def jwt(stack: Stack, subject: str, **claims) -> str:
    return DemoIdp.load(stack.idp_state).token(subject, "satgate", **claims)


def exchange(stack: Stack, subject: str, **claims) -> dict:
    answer = httpx.post(
        f"http://{LOOPBACK}:{stack.ports.mint}/api/mint/exchange",
        json={"credentials": jwt(stack, subject, **claims)},
        trust_env=False,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def spend(stack: Stack, tokens: list[str], count: int) -> list[int]:
    """`count` concurrent GETs through Envoy, spread over `tokens` (Envoy spreads them over both replicas)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as http:

        async def one(i: int) -> int:
            headers = {"authorization": f"Bearer {tokens[i % len(tokens)]}"}
            async with http.get(f"{stack.url}/v1/items", headers=headers) as response:
                await response.read()
                return response.status

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def test_re_exchanging_never_adds_credits(stack):
    first = exchange(stack, "agent-seq")
    assert first["identity_budget"]["remaining"] == 20
    assert asyncio.run(spend(stack, [first["token"]], 7)) == [200] * 7
    second = exchange(stack, "agent-seq")  # a new token, the same budget
    assert second["token_id"] != first["token_id"]
    assert second["identity_budget"]["remaining"] == 13
    statuses = asyncio.run(spend(stack, [first["token"], second["token"]], 20))
    assert statuses.count(200) == 13 and set(statuses) == {200, 402}
    third = exchange(stack, "agent-seq")
    assert third["identity_budget"]["remaining"] == 0
    assert asyncio.run(spend(stack, [third["token"]], 1)) == [402]
    verified = httpx.post(
        f"http://{LOOPBACK}:{stack.ports.mint}/api/mint/verify",
        headers={"authorization": f"Bearer {third['token']}"},
        trust_env=False,
    ).json()
    assert verified["remaining"] == 0 and verified["resets_at"] == third["identity_budget"]["resets_at"]


def test_concurrent_exchanges_share_one_budget(stack):
    async def exchanges() -> list[dict]:
        return list(await asyncio.gather(*(asyncio.to_thread(exchange, stack, "agent-burst") for _ in range(8))))

    tokens = [issued["token"] for issued in asyncio.run(exchanges())]
    assert len(set(tokens)) == 8
    statuses = asyncio.run(spend(stack, tokens, 40))
    assert statuses.count(200) == 20, statuses  # exactly the rule's budget, across both authz replicas


def test_an_sdk_refreshing_in_the_background_keeps_spending_the_same_budget(stack):
    """The refresh loop re-exchanges about every second here (a refresh asked for 3599 s before a 1 h expiry)."""
    agent = SatGateAgent(
        f"http://{LOOPBACK}:{stack.ports.mint}",
        identity=lambda: jwt(stack, "agent-sdk"),
        refresh_before_seconds=3599,
        http=httpx.Client(trust_env=False),
    )
    seen, statuses = set(), []
    with agent, httpx.Client(base_url=stack.url, trust_env=False, auth=agent.auth()) as http:
        deadline = time.monotonic() + 30
        while (len(seen) < 3 or statuses[-1] != 402) and time.monotonic() < deadline:
            statuses.append(http.get("/v1/items").status_code)
            seen.add(agent.held.token_id)
            time.sleep(0.1)
    assert len(seen) >= 3, "the SDK refreshed"
    assert statuses.count(200) == 20 and statuses[-1] == 402
    assert agent.held.remaining is not None and agent.held.remaining < 20  # what the last refresh found left
    assert agent.held.resets_at is not None and agent.held.resets_at > time.time()


def test_each_identity_keeps_its_own_budget(stack):
    spent = exchange(stack, "agent-spent")
    asyncio.run(spend(stack, [spent["token"]], 20))
    other = exchange(stack, "agent-other")
    assert other["identity_budget"]["remaining"] == 20
    assert asyncio.run(spend(stack, [other["token"]], 1)) == [200]


def test_budget_per_claim_template_and_per_policy(stack):
    run_a1, run_a2 = exchange(stack, "ci-a", run_id=101), exchange(stack, "ci-b", run_id=101)  # one run, two jobs
    run_b = exchange(stack, "ci-c", run_id=202)
    assert asyncio.run(spend(stack, [run_a1["token"], run_a2["token"]], 10)).count(200) == 6
    assert run_b["identity_budget"]["remaining"] == 6
    pool = [exchange(stack, f"pool-{n}")["token"] for n in range(3)]
    assert asyncio.run(spend(stack, pool, 12)).count(200) == 8  # every identity the rule matches, one pool


def test_budget_per_token_is_the_old_behaviour_when_asked_for(stack):
    first, second = exchange(stack, "legacy-1"), exchange(stack, "legacy-1")
    assert first["identity_budget"] is None
    assert asyncio.run(spend(stack, [first["token"]], 4)).count(200) == 3
    assert asyncio.run(spend(stack, [second["token"]], 4)).count(200) == 3  # a fresh budget: what the warning says
    assert "budget_per: token" in stack.log_tail("mint", 400)


def test_a_policy_budget_cut_reaches_tokens_already_issued(stack, tmp_path):
    """Changing the rule's budget in the policy file applies to the buckets that exist, spent credits kept; no
    token brings back the older limit."""
    issued = exchange(stack, "agent-cut")
    assert asyncio.run(spend(stack, [issued["token"]], 5)) == [200] * 5
    policies = stack.policies_path
    original = policies.read_text()
    try:
        policies.write_text(original.replace("budget_credits: 20", "budget_credits: 7"))
        deadline = time.monotonic() + 20
        while exchange(stack, "agent-cut-probe")["identity_budget"]["remaining"] != 7:
            assert time.monotonic() < deadline, "the Mint did not reload the policy"
            time.sleep(0.2)
        deadline = time.monotonic() + 10  # the reload applies the cut to the existing bucket right after
        while asyncio.run(spend(stack, [issued["token"]], 1)) == [200]:
            assert time.monotonic() < deadline, "the cut never reached the existing bucket"
        assert exchange(stack, "agent-cut")["identity_budget"]["remaining"] == 0
    finally:
        policies.write_text(original)
        deadline = time.monotonic() + 20  # back to 20 before any other test exchanges under this rule
        while exchange(stack, f"agent-restored-{time.monotonic_ns()}")["identity_budget"]["remaining"] != 20:
            assert time.monotonic() < deadline, "the Mint did not reload the restored policy"
            time.sleep(0.2)


def test_the_exhausted_alert_and_the_registry_name_the_limit_the_ledger_holds(stack):
    from tests.e2e.test_budget_exhausted_once import exhausted_events

    issued = exchange(stack, "agent-alert")
    bucket_id = next(c for c in issued["caveats"] if c.startswith("budget_bucket")).split(" = ")[1].split("/")[0]
    assert asyncio.run(spend(stack, [issued["token"]], 21)).count(402) == 1
    deadline = time.monotonic() + 15
    while not (mine := [e for e in exhausted_events(stack) if e["details"]["bucket_id"] == bucket_id]):
        assert time.monotonic() < deadline, "no budget_exhausted record"
        time.sleep(0.2)
    assert mine[0]["details"]["bucket_limit"] == 20  # the rule's, held by the ledger (the caveat carries none)
    keyring = load_keyring(stack.state_dir / "keyring.json")
    admin = mint(keyring, "demo", [("expires", format_utc(time.time() + 600)), ("scope", "satgate:admin")]).token
    listed = httpx.get(
        f"http://{LOOPBACK}:{stack.ports.mint}/api/admin/tokens/{issued['token_id']}",
        headers={"authorization": f"Bearer {admin}"},
        trust_env=False,
    ).json()["token"]
    assert (listed["budget_limit"], listed["remaining"], listed["budget_per"]) == (20, 0, "identity")
