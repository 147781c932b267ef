"""Identity budgets at the Mint (SPEC v2.2): the seed documents' policies as written, the exchange's audit record,
budget keys an identity lacks, and a budget change through the admin API reaching tokens already issued."""

import pytest

from mint_server.policies.files import load_policies
from mint_server.policies.models import PolicyError
from satgate.ledger import DebitRequest
from satgate.ledger.url import open_ledger
from satgate.tokens.verify import TokenVerifier

from .conftest import oidc_policy, policies
from .test_admin import admin_token, bearer
from .test_admin_api import managed_policy
from .test_policy_forms import SEED_POLICIES

SEED_ISSUERS = ("https://oidc.eks.us-east-1.amazonaws.com/id/ABCDEF", "https://token.actions.githubusercontent.com")


def pod(idp, service_account: str, uid: str) -> str:
    k8s = {"namespace": "ai-agents", "serviceaccount": {"name": service_account}, "pod": {"uid": uid}}
    subject = f"system:serviceaccount:ai-agents:{service_account}"
    return idp.token(subject, "satgate", **{"kubernetes.io": k8s})


def budget_buckets(issued: dict) -> list[str]:
    return [c for c in issued["caveats"] if c.startswith("budget")]


@pytest.fixture
async def seed_mint(idp, other_idp, start_mint, tmp_path):
    """The seed documents' two policies byte for byte, but for their issuers (pointed at two local ones)."""
    folder = tmp_path / "seed"
    folder.mkdir()
    for file, issuer, local in zip(
        ("kubernetes-agents.yaml", "github-actions.yaml"), SEED_ISSUERS, (idp, other_idp), strict=True
    ):
        (folder / file).write_text((SEED_POLICIES / file).read_text().replace(issuer, local.issuer))
    return await start_mint(folder, authz={"attributes": ["department", "cost_center"]}, default_tenant="acme")


async def test_the_seed_kubernetes_policy_gives_each_service_account_one_budget(idp, seed_mint):
    _, one = await seed_mint.exchange(pod(idp, "research-agent", "p1"))
    _, other = await seed_mint.exchange(pod(idp, "research-agent", "p2"))  # another pod, the same account
    assert budget_buckets(one) == budget_buckets(other) and budget_buckets(one)[0].endswith("/8h")
    assert (one["identity_budget"]["remaining"], one["identity_budget"]["period"]) == (1000, "8h")
    _, general = await seed_mint.exchange(pod(idp, "summarizer", "p3"))
    assert (general["identity_budget"]["remaining"], general["identity_budget"]["period"]) == (200, "4h")
    assert budget_buckets(general) != budget_buckets(one)


async def test_the_seed_github_policy_gives_each_subject_one_budget_across_runs(other_idp, seed_mint):
    claims = {"repository": "acme-corp/ai-pipeline", "ref": "refs/heads/main"}
    subject = "repo:acme-corp/ai-pipeline:ref:refs/heads/main"
    _, run1 = await seed_mint.exchange(other_idp.token(subject, "satgate", run_id=1, **claims))
    _, run2 = await seed_mint.exchange(other_idp.token(subject, "satgate", run_id=2, **claims))
    assert budget_buckets(run1) == budget_buckets(run2)
    assert run1["identity_budget"]["period"] == "1h" and "label = ci-2" in run2["caveats"]


async def test_the_exchange_record_holds_what_was_issued(idp, start_mint):
    m = await start_mint(
        policies(oidc_policy(idp.issuer, issue='budget_credits: 5, scopes: [api:read], label_template: "a"'))
    )
    _, issued = await m.exchange(idp.token("agent-1", "satgate"))
    (record,) = [r for r in await m.audit() if r["type"] == "exchange"]
    details = record["details"]
    assert details["caveats"] == [c for c in issued["caveats"] if not c.startswith("expires")]
    assert details["budget_per"] == "identity" and details["expires_at"] == issued["expires_at"]
    assert details["buckets"] == [budget_buckets(issued)[0].split(" = ")[1].split("/")[0]]


async def test_an_identity_without_the_budget_claim_is_refused(idp, start_mint):
    issue = 'budget_credits: 5, scopes: [api:read], budget_per: "{{ .Claims.run_id }}"'
    m = await start_mint(policies(oidc_policy(idp.issuer, issue=issue)))
    status, refused = await m.exchange(idp.token("agent-1", "satgate"))
    assert (status, refused["error"]) == (403, "no_budget_key")
    assert (await m.exchange(idp.token("agent-1", "satgate", run_id=7)))[0] == 200


@pytest.mark.parametrize("per", ["run", "{{ run_id }}", "{{ .Claims.run id }}", ""])
def test_a_bad_budget_per_is_refused_naming_the_field(tmp_path, per):
    file = tmp_path / "p.yaml"
    file.write_text(policies(oidc_policy("https://idp.example", issue=f'budget_credits: 5, budget_per: "{per}"')))
    with pytest.raises(PolicyError, match="budget_per"):
        load_policies(file)


def test_a_rule_cannot_set_its_budget_bucket_as_a_caveat(tmp_path):
    file = tmp_path / "p.yaml"
    file.write_text(policies(oidc_policy("https://idp.example", issue=f'caveats: {{budget_bucket: "{"a" * 32}/1h"}}')))
    with pytest.raises(PolicyError, match="budget_bucket"):
        load_policies(file)


async def test_a_budget_change_through_the_api_reaches_tokens_already_issued(idp, start_mint, keyring, tmp_path):
    m = await start_mint("policies: []\n")
    admin = bearer(admin_token(keyring))
    created = await m.client.post(
        "/api/admin/policies", headers=admin, json={"document": managed_policy(idp.issuer, budget=10)}
    )
    assert created.status == 200
    _, issued = await m.exchange(idp.token("bot-1", "satgate"))
    token = TokenVerifier(keyring).verify(issued["token"])
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")  # the ledger the authz servers debit
    try:
        assert (await ledger.debit(DebitRequest("acme", token.revocation_ids, token.buckets, 4))).remaining == 6
        updated = await m.client.put(
            "/api/admin/policies/managed",
            headers=admin,
            json={"document": managed_policy(idp.issuer, budget=5), "expected_version": 1},
        )
        assert updated.status == 200
        assert await ledger.remaining("acme", token.buckets) == 1  # 5 now, 4 spent: the old token too
    finally:
        await ledger.close()
    changes = [r for r in await m.audit() if r["type"] == "budget_change"]
    assert [(r["policy"], r["details"]["identity_buckets"]) for r in changes] == [("managed", 1)]


async def test_the_admin_api_lists_and_changes_identity_budgets(idp, start_mint, keyring):
    m = await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 10, ttl: 2h, scopes: [api:read]")))
    for subject in ("agent-1", "agent-1", "agent-2"):
        await m.exchange(idp.token(subject, "satgate"))
    admin = bearer(admin_token(keyring))
    listed = await (await m.client.get("/api/admin/identity-budgets?policy=agents", headers=admin)).json()
    rows = {tuple(b["identities"]): b for b in listed["budgets"]}
    assert set(rows) == {("agent-1",), ("agent-2",)}
    one = rows[("agent-1",)]
    assert (one["tokens"], one["limit"], one["remaining"], one["period"], one["kind"]) == (2, 10, 10, "2h", "credits")

    changed = await m.client.post(
        "/api/admin/identity-budgets", headers=admin, json={"policy": "agents", "identity": "agent-1", "delta": 5}
    )
    assert changed.status == 200 and (await changed.json())["remaining"] == 15
    _, again = await m.exchange(idp.token("agent-1", "satgate"))
    assert again["identity_budget"]["remaining"] == 15  # the identity's, whichever token it holds
    viewer = bearer(admin_token(keyring, "acme", "satgate:viewer"))
    refused = await m.client.post(
        "/api/admin/identity-budgets", headers=viewer, json={"policy": "agents", "identity": "agent-1", "delta": 5}
    )
    assert refused.status == 403
    unknown = await m.client.post(
        "/api/admin/identity-budgets", headers=admin, json={"policy": "agents", "identity": "nobody", "delta": 5}
    )
    assert unknown.status == 404
    other_tenant = bearer(admin_token(keyring, "globex"))
    assert (await (await m.client.get("/api/admin/identity-budgets?policy=agents", headers=other_tenant)).json()) == {
        "policy": "agents",
        "budgets": [],
    }
