"""The console's foundation over HTTP (the browser walk comes with the rest of the console): sign-in sets an
HttpOnly SameSite=Strict cookie holding the credential; each page checks the role as the API does; forms need the
session's CSRF token; a revoked credential's session ends at its next request."""

import json
import re

import pytest

from .conftest import oidc_policy, policies
from .test_admin import admin_token, bearer


@pytest.fixture
async def mint_server(idp, start_mint):
    return await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 5, scopes: [api:read]")))


async def sign_in(m, token):
    return await m.client.post("/console/sign-in", data={"token": token}, allow_redirects=False)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html).group(1)


async def test_sign_in_sets_a_strict_http_only_cookie_and_lists_tokens(idp, mint_server, keyring):
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    assert (await mint_server.client.get("/console/tokens", allow_redirects=False)).headers[
        "Location"
    ] == "/console/sign-in"
    signed = await sign_in(mint_server, admin_token(keyring, "acme", "satgate:viewer"))
    assert signed.status == 303
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    page = await mint_server.client.get("/console/tokens")
    html = await page.text()
    assert page.status == 200 and issued["token_id"] in html and "satgate:viewer" in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    detail = await (await mint_server.client.get(f"/console/tokens/{issued['token_id']}")).text()
    assert "(5 remaining in this 1h period)" in detail  # the identity's budget (SPEC v2.2), per ttl period
    assert "every token issued to it shares this budget" in detail and "; refills " in detail
    assert 'action="/console/tokens/' not in detail  # a viewer sees no revoke form


async def test_a_bad_credential_cannot_sign_in(mint_server, keyring):
    refused = await sign_in(mint_server, "junk")
    assert refused.status == 401 and "Set-Cookie" not in refused.headers
    other = await sign_in(mint_server, admin_token(keyring, "acme", "api:read"))  # a token without a role
    assert other.status == 403


async def test_a_member_revokes_with_the_form_and_a_viewer_forging_it_gets_403(idp, mint_server, keyring):
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    target = f"/console/tokens/{issued['token_id']}"
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:viewer"))
    viewer_page = await (await mint_server.client.get(target)).text()
    forged = await mint_server.client.post(
        f"{target}/revoke", data={"csrf_token": csrf_of(viewer_page), "id": issued["token_id"]}, allow_redirects=False
    )
    assert forged.status == 403
    assert any(r["type"] == "admin_denied" and r["details"]["operation"] == "Revoke" for r in await mint_server.audit())

    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:member"))
    member_page = await (await mint_server.client.get(target)).text()
    assert f'action="{target}/revoke"' in member_page
    no_csrf = await mint_server.client.post(f"{target}/revoke", data={"id": issued["token_id"]}, allow_redirects=False)
    assert no_csrf.status == 403
    form = {"csrf_token": csrf_of(member_page), "id": issued["token_id"]}
    unconfirmed = await mint_server.client.post(f"{target}/revoke", data=form, allow_redirects=False)
    assert unconfirmed.status == 400 and "confirm" in await unconfirmed.text()
    done = await mint_server.client.post(f"{target}/revoke", data={**form, "confirm": "on"}, allow_redirects=False)
    assert done.status == 303
    verified = await (await mint_server.client.post("/api/mint/verify", headers=bearer(issued["token"]))).json()
    assert verified == {"valid": False, "error": "revoked"}


async def test_a_revoked_credential_ends_its_session(mint_server, keyring):
    from satgate.tokens.verify import TokenVerifier

    credential = admin_token(keyring, "acme", "satgate:admin")
    await sign_in(mint_server, credential)
    assert (await mint_server.client.get("/console/tokens")).status == 200
    token_id = TokenVerifier(keyring).verify(credential).token_id
    other_admin = bearer(admin_token(keyring))
    await mint_server.client.post("/api/admin/revoke", headers=other_admin, json={"id": token_id, "pre_revoke": True})
    gone = await mint_server.client.get("/console/tokens", allow_redirects=False)
    assert gone.status == 303 and gone.headers["Location"] == "/console/sign-in"


async def test_audit_page_filters_verifies_the_chain_and_exports(idp, mint_server, keyring):
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:viewer"))
    page = await mint_server.client.get("/console/audit", params={"category": "identity"})
    html = await page.text()
    assert page.status == 200 and "Chain verified" in html and issued["token_id"] in html
    assert "admin_access" not in html.split("<tbody>")[1]  # filtered to the identity category
    exported = await mint_server.client.get("/console/audit/export", params={"type": "exchange", "format": "csv"})
    assert exported.headers["Content-Disposition"] == 'attachment; filename="satgate-audit-acme.csv"'
    rows = (await exported.text()).splitlines()
    assert rows[0].startswith("seq,") and len(rows) == 2 and issued["token_id"] in rows[1]
    lines = (
        await (await mint_server.client.get("/console/audit/export", params={"format": "json"})).text()
    ).splitlines()
    assert all(json.loads(line)["tenant"] == "acme" for line in lines) and len(lines) >= 2
    bad = await mint_server.client.get("/console/audit", params={"category": "everything"})
    assert bad.status == 400


async def test_policies_page_lists_file_policies_read_only(mint_server, keyring):
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:viewer"))
    html = await (await mint_server.client.get("/console/policies")).text()
    assert '<a href="/console/policies/agents">agents</a>' in html and "file (read-only)" in html


async def test_an_admin_changes_a_budget_and_a_member_cannot(idp, mint_server, keyring):
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))  # budget 5
    target = f"/console/tokens/{issued['token_id']}"
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:member"))
    member_page = await (await mint_server.client.get(target)).text()
    assert f'action="{target}/budget"' not in member_page
    refused = await mint_server.client.post(
        f"{target}/budget", data={"csrf_token": csrf_of(member_page), "delta": "5"}, allow_redirects=False
    )
    assert refused.status == 403

    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:admin"))
    page = await (await mint_server.client.get(target)).text()
    csrf = csrf_of(page)
    below = await mint_server.client.post(f"{target}/budget", data={"csrf_token": csrf, "delta": "-6"})
    assert below.status == 409 and "cut at most 5" in await below.text()
    done = await mint_server.client.post(
        f"{target}/budget", data={"csrf_token": csrf, "delta": "10", "reason": "q4"}, allow_redirects=False
    )
    assert done.status == 303
    after = await (await mint_server.client.get(target)).text()
    assert "(15 remaining in this 1h period)" in after and '<td class="number">+10</td>' in after and "q4" in after


async def test_an_admin_disables_an_api_policy_from_the_console(idp, mint_server, keyring):
    from .test_admin_api import managed_policy

    admin = bearer(admin_token(keyring))
    await mint_server.client.post("/api/admin/policies", headers=admin, json={"document": managed_policy(idp.issuer)})
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:admin"))
    page = await (await mint_server.client.get("/console/policies")).text()
    assert 'action="/console/policies/managed/disable"' in page
    assert 'action="/console/policies/agents/' not in page  # a file's policy has no switch
    done = await mint_server.client.post(
        "/console/policies/managed/disable", data={"csrf_token": csrf_of(page)}, allow_redirects=False
    )
    assert done.status == 303
    status, refused = await mint_server.exchange(idp.token("bot-1", "satgate"))
    assert (status, refused["error"]) == (403, "policy_disabled")


async def test_overview_charts_requests_credits_and_tokens_with_axes_and_legends(idp, mint_server, keyring):
    import time

    from mint_server.api.http import ADMIN

    await mint_server.exchange(idp.token("agent-1", "satgate"))
    sink = mint_server.client.app[ADMIN].tokens._usage
    now = time.time()
    records = [(now - 5, "acme", "t" * 32, "/v1", "GET", 200, 2, "{}")] * 3 + [
        (now - 5, "acme", "t" * 32, "/v1", "GET", 402, 0, "{}")
    ]
    await sink.write([*records, (now - 5, "globex", "g" * 32, "/v1", "GET", 200, 9, "{}")], retain_after=0)
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:viewer"))
    page = await mint_server.client.get("/console/overview")
    html = await page.text()
    assert page.status == 200 and html.count("<svg") == 3
    assert "requests from" in html and "3 allowed, 1 denied." in html  # the chart's description, for screen readers
    assert "6 credits." in html and "1 tokens issued." in html  # globex's 9 credits are not acme's
    assert ">requests</text>" in html and ">allowed</text>" in html  # the axis' unit and the legend
    assert (await mint_server.client.get("/console/overview", params={"period": "24h"})).status == 200


def test_axis_tops_are_round_numbers():
    from mint_server.console.charts import nice_ceiling

    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 12, 100, 101, 999)] == [1, 1, 5, 10, 20, 100, 200, 1000]


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}],
)
async def test_a_cross_site_sign_in_sets_no_session(mint_server, keyring, headers):
    """A page elsewhere posting a credential it holds would plant its session in the admin's browser."""
    response = await mint_server.client.post(
        "/console/sign-in", data={"token": admin_token(keyring)}, headers=headers, allow_redirects=False
    )
    assert response.status == 403 and "Set-Cookie" not in response.headers


async def test_a_same_origin_sign_in_works(mint_server, keyring):
    own = str(mint_server.client.make_url("/")).rstrip("/")
    response = await mint_server.client.post(
        "/console/sign-in",
        data={"token": admin_token(keyring)},
        headers={"Origin": own, "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
    )
    assert response.status == 303 and "Set-Cookie" in response.headers
