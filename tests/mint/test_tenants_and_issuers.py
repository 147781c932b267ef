"""Tenants cannot reach each other through the Mint (SPEC v2.2: Tenants and issuers): a real Mint over HTTP with
real local OIDC issuers, tenant admins driving the admin API as attackers would."""

import re
from pathlib import Path

import pytest
import yaml

from mint_server.policies.files import PolicyStore
from mint_server.policies.models import PolicyError, TrustPolicy
from mint_server.policies.tenants import IssuerDirectory, SharedIssuer
from satgate.config import Config

from .conftest import oidc_policy, policies
from .test_admin import admin_token, bearer


def oidc_document(issuer: str, *, name: str, sub: str = "*", **extra) -> dict:
    return {
        "name": name,
        "provider": "oidc",
        "issuer": issuer,
        "audience": "satgate",
        "trust_rules": [{"match": {"claims": {"sub": sub}}, "issue": {"budget_credits": 1, "scopes": ["api:read"]}}],
        **extra,
    }


async def create(m, keyring, tenant: str, document: dict):
    response = await m.client.post(
        "/api/admin/policies", headers=bearer(admin_token(keyring, tenant)), json={"document": document}
    )
    return response.status, await response.json()


async def test_a_policy_trusting_another_tenants_issuer_is_refused_without_naming_it(idp, start_mint, keyring):
    m = await start_mint(policies(oidc_policy(idp.issuer, name="acme-agents")))
    status, body = await create(m, keyring, "evil", oidc_document(idp.issuer, name="capture"))
    assert (status, body["error"]) == (409, "overlap")
    assert "acme" not in body["message"] and "acme-agents" not in body["message"]
    status, issued = await m.exchange(idp.token("agent-1", "satgate"))
    assert (status, issued["tenant"]) == (200, "acme")


async def test_the_first_tenant_to_trust_an_unshared_issuer_keeps_it(idp, other_idp, start_mint, keyring):
    """Through the API alone: the issuer belongs to the tenant whose policy trusted it first; the second is
    refused, and the first tenant's identities keep going to the first tenant."""
    m = await start_mint(policies(oidc_policy(other_idp.issuer, name="unrelated")))
    assert (await create(m, keyring, "victim", oidc_document(idp.issuer, name="bots", sub="bot-*")))[0] == 200
    status, body = await create(m, keyring, "evil", oidc_document(idp.issuer, name="catch-all"))
    assert (status, body["error"]) == (409, "overlap")
    status, issued = await m.exchange(idp.token("bot-1", "satgate"))
    assert (status, issued["tenant"]) == (200, "victim")


async def test_on_a_shared_issuer_a_catch_all_reaches_only_its_own_tenants_identities(idp, start_mint, keyring):
    """The platform admin shares one issuer: evil's catch-all with jwt_reuse once, created first, neither captures
    the victim's agent nor burns its JWT."""
    shared = [
        {"issuer": idp.issuer, "tenants": {"victim": {"claims": {"sub": "v-*"}}, "evil": {"claims": {"sub": "e-*"}}}}
    ]
    m = await start_mint("policies: []\n", shared_issuers=shared)
    status, _ = await create(m, keyring, "evil", oidc_document(idp.issuer, name="catch-all", jwt_reuse="once"))
    assert status == 200
    assert (await create(m, keyring, "victim", oidc_document(idp.issuer, name="agents")))[0] == 200

    victims_jwt = idp.token("v-1", "satgate")
    for _ in range(2):  # not replayed: evil's once-only policy never saw it
        status, issued = await m.exchange(victims_jwt)
        assert (status, issued["tenant"], issued["policy"]) == (200, "victim", "agents")
    status, issued = await m.exchange(idp.token("e-1", "satgate"))
    assert (status, issued["tenant"]) == (200, "evil")
    status, refused = await m.exchange(idp.token("stranger", "satgate"))  # carries no tenant's claims
    assert (status, refused["error"]) == (403, "no_matching_rule")


async def test_a_tenant_without_a_share_of_a_shared_issuer_is_refused(idp, start_mint, keyring):
    shared = [{"issuer": idp.issuer, "tenants": {"victim": {"claims": {"sub": "v-*"}}}}]
    m = await start_mint("policies: []\n", shared_issuers=shared)
    status, body = await create(m, keyring, "evil", oidc_document(idp.issuer, name="catch-all"))
    assert (status, body["error"]) == (409, "overlap")
    assert "victim" not in body["message"]


async def test_a_tenant_cannot_change_a_shared_issuers_key_source(idp, other_idp, start_mint, keyring):
    """The platform admin's key source (discovery here) verifies a shared issuer, never a tenant's jwks_uri."""
    shared = [
        {"issuer": idp.issuer, "tenants": {"evil": {"claims": {"sub": "e-*"}}, "victim": {"claims": {"sub": "v-*"}}}}
    ]
    m = await start_mint("policies: []\n", shared_issuers=shared)
    assert (await create(m, keyring, "victim", oidc_document(idp.issuer, name="agents")))[0] == 200
    document = oidc_document(idp.issuer, name="keys", jwks_uri=f"{other_idp.issuer}/jwks")
    assert (await create(m, keyring, "evil", document))[0] == 200
    other_idp.issuer = idp.issuer  # the attacker's key, the shared issuer's name
    status, body = await m.exchange(other_idp.token("v-1", "satgate"))
    assert (status, body["error"]) == (401, "invalid_identity")
    assert (await m.exchange(idp.token("v-1", "satgate")))[1]["tenant"] == "victim"


def test_policy_files_trusting_one_issuer_for_two_tenants_are_refused_with_the_fix(idp, tmp_path):
    file = tmp_path / "policies.yaml"
    file.write_text(
        policies(
            oidc_policy(idp.issuer, name="acme-agents"),
            oidc_policy(idp.issuer, name="globex-agents").replace("tenant: acme", "tenant: globex"),
        )
    )
    with pytest.raises(PolicyError) as refused:
        PolicyStore(file, frozenset())
    message = str(refused.value)
    assert "\n" not in message and "globex-agents" in message and "mint.shared_issuers" in message


def aws_policy(tenant: str, name: str, account: str | None) -> TrustPolicy:
    match = {"account": account} if account else {"arn": "arn:aws:iam::*:role/*"}
    rule = {"match": match, "issue": {"budget_credits": 1, "scopes": ["api:read"]}}
    return TrustPolicy.model_validate({"name": name, "provider": "aws", "tenant": tenant, "trust_rules": [rule]})


def test_aws_accounts_belong_to_one_tenant():
    acme, globex = aws_policy("acme", "acme-roles", "111111111111"), aws_policy("globex", "roles", "222222222222")
    directory = IssuerDirectory([acme, globex])
    assert directory.aws_candidates("111111111111") == [acme]
    assert directory.aws_candidates("222222222222") == [globex]
    assert directory.aws_candidates("333333333333") == []
    assert directory.overlap(aws_policy("evil", "any", None)) is not None  # any account overlaps every owned one
    assert directory.overlap(aws_policy("evil", "same", "111111111111")) is not None
    assert directory.overlap(aws_policy("evil", "own", "444444444444")) is None
    catch_all = aws_policy("platform", "any", None)
    assert IssuerDirectory([catch_all]).aws_candidates("555555555555") == [catch_all]


def test_the_documented_shared_issuers_load_and_assign_each_tenant():
    text = (Path(__file__).resolve().parents[2] / "docs" / "trust-policies.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "shared_issuers" in b)
    config = Config.model_validate(yaml.safe_load(block))
    kubernetes, github = (SharedIssuer.from_config(i, e) for i, e in enumerate(config.mint.shared_issuers))
    assert sorted(kubernetes.assignments) == ["acme", "globex"]
    assert kubernetes.assignments["acme"].namespace == ["acme", "acme-*"]
    assert github.assignments["acme"].claims == {"repository_owner": "acme-corp"}


def test_a_bad_assignment_is_one_line_naming_the_field():
    config = Config.model_validate(
        {"mint": {"shared_issuers": [{"issuer": "https://idp.example", "tenants": {"acme": {"namspace": "x"}}}]}}
    )
    with pytest.raises(PolicyError) as refused:
        SharedIssuer.from_config(0, config.mint.shared_issuers[0])
    assert str(refused.value).startswith("mint.shared_issuers.0.tenants.acme.namspace:")
    assert "\n" not in str(refused.value)
