"""Policy state you can see and undo (SPEC v2.2): enabled ⇄ disabled, revoked for good but in sight and its name
free again, tokens revoked with it on request; names per tenant; every change audited under its tenant. A real
Mint over HTTP, real local OIDC issuers, and the `satgate admin` CLI as a subprocess."""

import json

from .conftest import oidc_policy, policies
from .test_admin import admin_token, bearer, valid
from .test_admin_api import managed_policy
from .test_admin_cli import satgate_admin


async def call(m, keyring, method: str, path: str, tenant: str = "acme", **body):
    response = await m.client.request(method, path, headers=bearer(admin_token(keyring, tenant)), json=body or None)
    return response.status, await response.json()


async def states(m, keyring, tenant: str = "acme") -> dict[str, str]:
    _, listed = await call(m, keyring, "GET", "/api/admin/policies", tenant)
    return {p["name"]: p["state"] for p in listed["policies"]}


async def test_disable_and_enable_undo_each_other_and_show(idp, start_mint, keyring):
    m = await start_mint("policies: []\n")
    assert (await call(m, keyring, "POST", "/api/admin/policies", document=managed_policy(idp.issuer)))[0] == 200
    assert await states(m, keyring) == {"managed": "enabled"}
    assert (await call(m, keyring, "POST", "/api/admin/policies/managed/disable"))[0] == 200
    assert await states(m, keyring) == {"managed": "disabled"}
    assert (await m.exchange(idp.token("bot-1", "satgate")))[1]["error"] == "policy_disabled"
    assert (await call(m, keyring, "POST", "/api/admin/policies/managed/enable"))[0] == 200
    assert (await m.exchange(idp.token("bot-1", "satgate")))[0] == 200


async def test_revoking_stops_issuance_stays_in_sight_refuses_enable_and_frees_the_name(idp, start_mint, keyring):
    m = await start_mint("policies: []\n")
    await call(m, keyring, "POST", "/api/admin/policies", document=managed_policy(idp.issuer))
    _, issued = await m.exchange(idp.token("bot-1", "satgate"))
    status, revoked = await call(m, keyring, "POST", "/api/admin/policies/managed/revoke", reason="incident 7")
    assert (status, revoked["already_revoked"], revoked["tokens_revoked"]) == (200, False, 0)
    assert await states(m, keyring) == {"managed": "revoked"}
    status, refused = await m.exchange(idp.token("bot-1", "satgate"))
    assert status == 403
    assert await valid(m, issued["token"])  # without revoke_tokens, issued tokens live to their TTL

    status, refused = await call(m, keyring, "POST", "/api/admin/policies/managed/enable")
    assert (status, refused["error"]) == (409, "revoked")
    assert "Create a new policy" in refused["message"]
    again = await call(m, keyring, "POST", "/api/admin/policies/managed/revoke")
    assert (again[0], again[1]["already_revoked"]) == (200, True)

    status, _ = await call(m, keyring, "POST", "/api/admin/policies", document=managed_policy(idp.issuer, budget=3))
    assert status == 200  # the name is free again: a new policy, a new history entry
    assert await states(m, keyring) == {"managed": "enabled"}
    assert (await m.exchange(idp.token("bot-2", "satgate")))[1]["budget_credits"] == 3
    _, history = await call(m, keyring, "GET", "/api/admin/policies/managed/history")
    assert [v["action"] for v in history["versions"]] == ["create", "revoke", "create"]


async def test_revoke_tokens_revokes_every_token_issued_under_the_policy(idp, start_mint, keyring):
    m = await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 5, scopes: [api:read]")))
    tokens = [(await m.exchange(idp.token(f"agent-{n}", "satgate")))[1]["token"] for n in range(3)]
    child = await m.client.post("/api/mint/delegate", headers=bearer(tokens[0]), json={"budget_credits": 1})
    child_token = (await child.json())["token"]
    status, revoked = await call(m, keyring, "POST", "/api/admin/policies/agents/revoke", revoke_tokens=True)
    assert (status, revoked["tokens_revoked"]) == (200, 3)
    assert [await valid(m, t) for t in (*tokens, child_token)] == [False] * 4
    assert await states(m, keyring) == {"agents": "revoked"}  # a file policy: revoked for good, in sight


async def test_names_are_per_tenant_and_a_revocation_burns_none_of_anothers(idp, other_idp, start_mint, keyring):
    m = await start_mint("policies: []\n")
    acme = managed_policy(idp.issuer, name="bots")
    globex = managed_policy(other_idp.issuer, name="bots")
    assert (await call(m, keyring, "POST", "/api/admin/policies", "acme", document=acme))[0] == 200
    assert (await call(m, keyring, "POST", "/api/admin/policies", "globex", document=globex))[0] == 200
    status, refused = await call(m, keyring, "POST", "/api/admin/policies", "acme", document=acme)
    assert (status, refused["error"]) == (409, "conflict") and "tenant" not in refused["message"]
    assert (await call(m, keyring, "POST", "/api/admin/policies/bots/revoke", "acme"))[0] == 200
    assert await states(m, keyring, "globex") == {"bots": "enabled"}
    status, issued = await m.exchange(other_idp.token("bot-1", "satgate"))
    assert (status, issued["tenant"]) == (200, "globex")


async def test_every_state_change_is_audited_under_its_tenant(idp, start_mint, keyring):
    m = await start_mint("policies: []\n")
    await call(m, keyring, "POST", "/api/admin/policies", document=managed_policy(idp.issuer))
    for action in ("disable", "enable", "revoke"):
        await call(m, keyring, "POST", f"/api/admin/policies/managed/{action}")
    changes = [r for r in await m.audit() if r["type"] in ("policy_change", "policy_revoked")]
    assert [(r["type"], r["details"].get("action")) for r in changes] == [
        ("policy_change", "create"),
        ("policy_change", "disable"),
        ("policy_change", "enable"),
        ("policy_change", "revoke"),
        ("policy_revoked", None),
    ]
    assert {r["tenant"] for r in changes} == {"acme"}


async def test_the_cli_shows_the_state_and_revokes_with_tokens(idp, start_mint, keyring):
    m = await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 5, scopes: [api:read]")))
    _, issued = await m.exchange(idp.token("agent-1", "satgate"))
    token = admin_token(keyring)
    code, out, err = await satgate_admin(m, token, "revoke-policy", "--name", "agents", "--revoke-tokens")
    assert code == 0, err
    assert json.loads(out)["tokens_revoked"] == 1
    code, out, _ = await satgate_admin(m, token, "list-policies")
    assert [(p["name"], p["state"]) for p in json.loads(out)["policies"]] == [("agents", "revoked")]
    assert not await valid(m, issued["token"])


async def test_the_console_shows_the_state_and_revokes_with_its_tokens(idp, start_mint, keyring):
    from .test_console import csrf_of, sign_in

    m = await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 5, scopes: [api:read]")))
    _, issued = await m.exchange(idp.token("agent-1", "satgate"))
    await sign_in(m, admin_token(keyring, "acme", "satgate:admin"))
    page = await (await m.client.get("/console/policies/agents")).text()
    assert 'class="state-enabled">enabled' in page and 'action="/console/policies/agents/revoke"' in page
    form = {"csrf_token": csrf_of(page), "reason": "leak", "revoke_tokens": "1"}
    unconfirmed = await m.client.post("/console/policies/agents/revoke", data=form, allow_redirects=False)
    assert unconfirmed.status == 400  # a revocation cannot be undone: the box must be ticked
    done = await m.client.post("/console/policies/agents/revoke", data={**form, "confirm": "1"}, allow_redirects=False)
    assert done.status == 303
    after = await (await m.client.get("/console/policies")).text()
    assert 'class="state-revoked">revoked' in after
    assert not await valid(m, issued["token"])
