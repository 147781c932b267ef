"""Server-side delegation, admin authentication, tenant isolation, cascade revocation, audit export."""

import csv
import io
import json
import time

import pytest

from satgate.timefmt import format_utc
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier

from .conftest import oidc_policy, policies


def admin_token(keyring, tenant="acme", scope="satgate:admin", *extra):
    return mint(keyring, tenant, [("expires", format_utc(time.time() + 600)), ("scope", scope), *extra]).token


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def mint_server(idp, start_mint):
    return await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 50, max_delegation_depth: 2")))


async def delegate(m, parent, **body):
    response = await m.client.post("/api/mint/delegate", headers=bearer(parent), json=body)
    return response.status, await response.json()


async def valid(m, token) -> bool:
    return (await (await m.client.post("/api/mint/verify", headers=bearer(token))).json())["valid"]


async def test_delegate_issues_a_narrower_child_with_a_fresh_delegation_first(idp, mint_server, keyring):
    _, parent = await mint_server.exchange(idp.token("agent-1", "satgate"))
    status, child = await delegate(
        mint_server, parent["token"], budget_credits=5, scopes=["api:read"], ttl="10m", label="sub-agent"
    )
    assert status == 200, child
    assert child["caveats"][0] == f"delegation = {child['delegation_id']}"
    assert [c.split(" = ")[0] for c in child["caveats"]] == ["delegation", "expires", "scope", "budget", "label"]
    token = TokenVerifier(keyring).verify(child["token"])
    assert token.revocation_ids == (parent["token_id"], child["delegation_id"])
    assert [b.limit for b in token.buckets] == [0, 5]  # the parent's budget still binds (its limit in the ledger)
    assert token.buckets[0].bucket_id in " ".join(parent["caveats"])
    assert child["parent_delegation_id"] is None
    _, grandchild = await delegate(mint_server, child["token"], budget_credits=2)
    assert grandchild["parent_delegation_id"] == child["delegation_id"]

    listed = await mint_server.client.get(
        f"/api/admin/delegations?token_id={parent['token_id']}", headers=bearer(admin_token(keyring))
    )
    tree = (await listed.json())["delegations"]
    assert [(d["delegation_id"], d["parent_delegation_id"]) for d in tree] == [
        (child["delegation_id"], None),
        (grandchild["delegation_id"], child["delegation_id"]),
    ]
    assert tree[0]["actor"] == parent["token_id"] and tree[1]["actor"] == child["delegation_id"]


async def test_depth_limits_and_expiry_are_inherited(idp, mint_server):
    _, parent = await mint_server.exchange(idp.token("agent-1", "satgate"))  # max_delegation_depth 2
    _, one = await delegate(mint_server, parent["token"], ttl="7d")
    assert one["expires_at"] <= parent["expires_at"]  # never outlives its parent
    _, two = await delegate(mint_server, one["token"])
    status, body = await delegate(mint_server, two["token"])
    assert (status, body["error"]) == (403, "caveat_failed")


async def test_delegation_needs_a_live_parent(idp, mint_server, keyring):
    assert (await delegate(mint_server, "junk"))[0] == 401
    expired = mint(keyring, "acme", [("expires", format_utc(time.time() - 600))]).token
    assert (await delegate(mint_server, expired))[1]["error"] == "expired"
    _, parent = await mint_server.exchange(idp.token("agent-1", "satgate"))
    await mint_server.client.post(
        "/api/admin/revoke", headers=bearer(admin_token(keyring)), json={"id": parent["token_id"]}
    )
    assert (await delegate(mint_server, parent["token"]))[1]["error"] == "revoked"
    for bad in (
        {"budget_credits": 0},
        {"scopes": "api:read"},
        {"ttl": "forever"},
        {"caveats": {"colour": "red"}},
        {"surprise": 1},
    ):
        other = (await mint_server.exchange(idp.token("agent-2", "satgate")))[1]["token"]
        assert (await delegate(mint_server, other, **bad))[0] == 400, bad


async def test_revoking_a_delegation_cascades_down_but_not_up_or_sideways(idp, mint_server, keyring):
    _, parent = await mint_server.exchange(idp.token("agent-1", "satgate"))
    _, child = await delegate(mint_server, parent["token"])
    _, sibling = await delegate(mint_server, parent["token"])
    _, grandchild = await delegate(mint_server, child["token"])
    response = await mint_server.client.post(
        "/api/admin/revoke",
        headers=bearer(admin_token(keyring)),
        json={"id": child["delegation_id"], "reason": "leaked"},
    )
    body = await response.json()
    assert body["known_delegations"] == [child["delegation_id"], grandchild["delegation_id"]]
    assert not await valid(mint_server, child["token"])
    assert not await valid(mint_server, grandchild["token"])
    assert await valid(mint_server, parent["token"])
    assert await valid(mint_server, sibling["token"])


@pytest.mark.parametrize(
    ("make", "status", "error"),
    [
        (lambda kr: None, 401, "missing_token"),
        (lambda kr: admin_token(kr, scope="api:*"), 403, "insufficient_scope"),
        (lambda kr: admin_token(kr, scope="*"), 403, "insufficient_scope"),  # `*` is not an admin grant
        (lambda kr: mint(kr, "acme", [("expires", format_utc(time.time() + 60))]).token, 403, "insufficient_scope"),
        (lambda kr: admin_token(kr, "acme", "satgate:admin", ("methods", "GET")), 403, "caveat_failed"),
        (lambda kr: admin_token(kr, "acme", "satgate:admin", ("cidrs", "10.0.0.0/8")), 403, "caveat_failed"),
        (
            lambda kr: mint(kr, "acme", [("scope", "satgate:admin"), ("expires", format_utc(time.time() - 99))]).token,
            401,
            "expired",
        ),
    ],
)
async def test_admin_authentication(mint_server, keyring, make, status, error):
    token = make(keyring)
    headers = bearer(token) if token else {}
    response = await mint_server.client.post("/api/admin/revoke", headers=headers, json={"id": "a" * 32})
    assert (response.status, (await response.json())["error"]) == (status, error)


async def test_satgate_namespace_wildcard_grants_admin(mint_server, keyring):
    response = await mint_server.client.post(
        "/api/admin/revoke",
        headers=bearer(admin_token(keyring, scope="satgate:*")),
        json={"id": "a" * 32, "pre_revoke": True},
    )
    assert response.status == 200


async def test_a_revoked_admin_token_is_refused(mint_server, keyring):
    admin = admin_token(keyring)
    admin_id = TokenVerifier(keyring).verify(admin).token_id
    # minted offline here, so no audit record ties it to the tenant: a pre-revocation by name
    await mint_server.client.post("/api/admin/revoke", headers=bearer(admin), json={"id": admin_id, "pre_revoke": True})
    response = await mint_server.client.get("/api/admin/audit", headers=bearer(admin))
    assert (response.status, (await response.json())["error"]) == (401, "revoked")


async def test_tenants_are_isolated(idp, start_mint, keyring):
    m = await start_mint(
        policies(
            oidc_policy(idp.issuer, name="acme-agents", issue="budget_credits: 5"),
            oidc_policy(idp.issuer, name="globex-agents", match='sub: "g-*"', issue="budget_credits: 5").replace(
                "tenant: acme", "tenant: globex"
            ),
        ),
        shared_issuers=[
            {
                "issuer": idp.issuer,
                "tenants": {"acme": {"claims": {"sub": "agent-*"}}, "globex": {"claims": {"sub": "g-*"}}},
            }
        ],
    )
    _, acme = await m.exchange(idp.token("agent-1", "satgate"))
    _, globex = await m.exchange(idp.token("g-1", "satgate"))
    assert globex["tenant"] == "globex"
    _, globex_child = await delegate(m, globex["token"])
    acme_admin = bearer(admin_token(keyring, "acme"))
    # A's admin revoking B's token id is told nothing of A's carries it, and touches nothing of B's.
    refused = await m.client.post("/api/admin/revoke", headers=acme_admin, json={"id": globex["token_id"]})
    assert (refused.status, (await refused.json())["error"]) == (404, "not_found")
    assert await valid(m, globex["token"])
    # A's admin cannot see B's delegation tree or audit records, nor revoke B's policy.
    listed = await (
        await m.client.get(f"/api/admin/delegations?token_id={globex['token_id']}", headers=acme_admin)
    ).json()
    assert listed == {"delegations": []}
    records = (await (await m.client.get("/api/admin/audit", headers=acme_admin)).json())["records"]
    assert records and all(r["tenant"] == "acme" for r in records)
    assert globex_child["delegation_id"] not in str(records)
    denied = await m.client.post("/api/admin/policies/globex-agents/revoke", headers=acme_admin)
    assert denied.status == 404
    assert (await m.exchange(idp.token("g-2", "satgate")))[0] == 200
    # B's own admin can.
    assert (
        await m.client.post(
            "/api/admin/revoke", headers=bearer(admin_token(keyring, "globex")), json={"id": globex["token_id"]}
        )
    ).status == 200
    assert not await valid(m, globex["token"])
    assert await valid(m, acme["token"])


async def test_revoking_a_trust_policy_stops_issuance_and_spares_issued_tokens(idp, mint_server, keyring):
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    response = await mint_server.client.post(
        "/api/admin/policies/agents/revoke", headers=bearer(admin_token(keyring)), json={"reason": "incident 42"}
    )
    assert (await response.json()) == {
        "policy": "agents",
        "revoked": True,
        "already_revoked": False,
        "tokens_revoked": 0,
    }
    status, body = await mint_server.exchange(idp.token("agent-1", "satgate"))
    assert (status, body["error"]) == (403, "policy_disabled")
    assert await valid(mint_server, issued["token"])


async def test_audit_export_json_and_csv(idp, mint_server, keyring):
    _, parent = await mint_server.exchange(idp.token("agent-1", "satgate"))
    _, child = await delegate(mint_server, parent["token"], budget_credits=3)
    admin = bearer(admin_token(keyring))
    await mint_server.client.post("/api/admin/revoke", headers=admin, json={"id": child["delegation_id"]})
    await mint_server.client.get("/api/admin/delegations", headers=bearer(admin_token(keyring, scope="api:read")))
    records = (await (await mint_server.client.get("/api/admin/audit", headers=admin)).json())["records"]
    assert [r["type"] for r in records] == [
        "exchange",
        "delegate",
        "admin_access",
        "revoke",
        "admin_denied",
        "admin_access",
    ]
    assert records[2]["details"] == {"path": "/api/admin/revoke", "operation": "Revoke", "role": "satgate:admin"}
    assert all(len(r["hash"]) == 64 for r in records)
    assert parent["token"] not in str(records) and child["token"] not in str(records)
    text = await (await mint_server.client.get("/api/admin/audit?format=csv", headers=admin)).text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["type"] for row in rows] == [r["type"] for r in records] + ["admin_access"]  # the CSV call's own
    assert rows[1]["details"].startswith("{") and child["delegation_id"] in rows[1]["details"]


async def test_grpc_delegate_and_admin(idp, mint_server, keyring):
    import grpc

    from satgate_api.admin.v1 import admin_pb2, admin_pb2_grpc
    from satgate_api.mint.v1 import mint_pb2, mint_pb2_grpc

    _, parent = await mint_server.exchange(idp.token("agent-1", "satgate"))
    admin = [("authorization", f"Bearer {admin_token(keyring)}")]
    async with grpc.aio.insecure_channel(mint_server.grpc_target) as channel:
        mint_stub, admin_stub = mint_pb2_grpc.MintStub(channel), admin_pb2_grpc.AdminStub(channel)
        child = await mint_stub.Delegate(
            mint_pb2.DelegateRequest(budget_credits=4, scopes=["api:read"], label="g"),
            metadata=[("authorization", f"Bearer {parent['token']}")],
        )
        assert child.caveats[0] == f"delegation = {child.delegation_id}" and child.parent_delegation_id == ""
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await mint_stub.Delegate(mint_pb2.DelegateRequest())
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED

        tree = await admin_stub.ListDelegations(
            admin_pb2.ListDelegationsRequest(token_id=parent["token_id"]), metadata=admin
        )
        assert [(d.delegation_id, d.budget_credits, d.label) for d in tree.delegations] == [
            (child.delegation_id, 4, "g")
        ]
        revoked = await admin_stub.Revoke(
            admin_pb2.RevokeRequest(id=child.delegation_id, reason="test"), metadata=admin
        )
        assert list(revoked.known_delegations) == [child.delegation_id] and revoked.recorded_as == "delegation"
        assert not await valid(mint_server, child.token)
        policy = await admin_stub.RevokePolicy(admin_pb2.RevokePolicyRequest(name="agents"), metadata=admin)
        assert not policy.already_revoked
        exported = await admin_stub.ExportAudit(admin_pb2.ExportAuditRequest(), metadata=admin)
        assert [json.loads(r)["type"] for r in exported.records] == [
            "exchange",
            "delegate",
            "admin_access",
            "admin_access",
            "revoke",
            "admin_access",
            "policy_revoked",
            "admin_access",
        ]
        with pytest.raises(grpc.aio.AioRpcError) as not_admin:
            await admin_stub.ExportAudit(
                admin_pb2.ExportAuditRequest(), metadata=[("authorization", f"Bearer {parent['token']}")]
            )
        assert not_admin.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await admin_stub.Revoke(admin_pb2.RevokeRequest(id="e" * 32), metadata=admin)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        ahead = await admin_stub.Revoke(admin_pb2.RevokeRequest(id="e" * 32, pre_revoke=True), metadata=admin)
        assert ahead.revoked == "e" * 32 and ahead.recorded_as == ""


async def test_revoke_says_what_the_id_was_recorded_as_and_refuses_unknown_ids(idp, mint_server, keyring):
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    _, child = await delegate(mint_server, issued["token"])
    admin = bearer(admin_token(keyring))
    unknown = await mint_server.client.post("/api/admin/revoke", headers=admin, json={"id": "e" * 32})
    assert unknown.status == 404 and "pre_revoke" in (await unknown.json())["message"]
    bad = await mint_server.client.post("/api/admin/revoke", headers=admin, json={"id": "e" * 32, "pre_revoke": 1})
    assert bad.status == 400
    for revocation_id, kind in ((child["delegation_id"], "delegation"), (issued["token_id"], "token")):
        answer = await (
            await mint_server.client.post("/api/admin/revoke", headers=admin, json={"id": revocation_id})
        ).json()
        assert (answer["revoked"], answer["recorded_as"]) == (revocation_id, kind)
    ahead = await mint_server.client.post("/api/admin/revoke", headers=admin, json={"id": "e" * 32, "pre_revoke": True})
    assert (ahead.status, (await ahead.json())["recorded_as"]) == (200, None)


async def test_an_unknown_audit_export_format_is_400(mint_server, keyring):
    response = await mint_server.client.get("/api/admin/audit?format=xml", headers=bearer(admin_token(keyring)))
    assert (response.status, (await response.json())["error"]) == (400, "bad_request")
