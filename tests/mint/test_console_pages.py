"""The console's usage and trust-policy pages over HTTP: usage charted by token, label, route and a declared
attribute from real usage records; policies created and edited through the form with the API's validation, every
version's diff shown, and the next exchange following an edit."""

import json
import re
import time

import pytest

from mint_server.api.http import ADMIN

from .conftest import oidc_policy, policies
from .test_admin import admin_token
from .test_console import csrf_of, sign_in


@pytest.fixture
async def mint_server(idp, start_mint):
    issue = 'budget_credits: 5, scopes: [api:read], label_template: "agent-{{ .Claims.sub }}"'
    return await start_mint(policies(oidc_policy(idp.issuer, issue=issue)))


def totals_table(html: str) -> list[tuple[str, ...]]:
    """The usage page's table rows: (key, requests, allowed, denied, credits), tags stripped."""
    body = html.split("<tbody>")[1].split("</tbody>", maxsplit=1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]
    return [tuple(re.sub(r"<[^>]+>", "", cell).strip() for cell in row) for row in cells]


async def test_usage_by_token_label_route_and_department(idp, mint_server, keyring):
    _, first = await mint_server.exchange(idp.token("agent-1", "satgate"))
    _, second = await mint_server.exchange(idp.token("agent-2", "satgate"))
    one, two = first["token_id"], second["token_id"]
    now = time.time()
    ops, ml = json.dumps({"department": "ops"}), json.dumps({"department": "ml"})
    await mint_server.client.app[ADMIN].tokens._usage.write(
        [
            (now - 7200, "acme", one, "/v1/chat", "POST", 200, 4, ops),
            (now - 60, "acme", one, "/v1/chat", "POST", 402, 0, ops),
            (now - 60, "acme", two, "/v1/embed", "POST", 200, 3, ml),
            (now - 60, "globex", "g" * 32, "/v1/chat", "POST", 200, 50, ops),  # another tenant's: never shown
        ],
        retain_after=0,
    )
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:viewer"))

    async def table(**params):
        page = await mint_server.client.get("/console/usage", params={"period": "24h", **params})
        html = await page.text()
        assert page.status == 200, html
        return html, totals_table(html)

    html, rows = await table(by="token")
    assert rows == [(one, "2", "1", "1", "4"), (two, "1", "1", "0", "3")]
    assert f'href="/console/tokens/{one}"' in html and html.count("<svg") == 1
    assert "Credits per hour by token (UTC)" in html and "7 credits" not in html  # per series: 4 and 3
    assert f": 4 {one}, 3 {two}." in html  # the chart description names each series in full
    _, rows = await table(by="label")
    assert rows == [("agent-agent-1", "2", "1", "1", "4"), ("agent-agent-2", "1", "1", "0", "3")]
    _, rows = await table(by="route", metric="requests")
    assert rows == [("/v1/chat", "2", "1", "1", "4"), ("/v1/embed", "1", "1", "0", "3")]
    html, rows = await table(by="attr:department")
    assert rows == [("ops", "2", "1", "1", "4"), ("ml", "1", "1", "0", "3")]
    assert "by department" in html
    _, rows = await table(by="token", key=two)  # one token's usage, as its token page links it
    assert rows == [(two, "1", "1", "0", "3")]
    refused = await mint_server.client.get("/console/usage", params={"by": "attr:secret"})
    assert refused.status == 400 and "by: one of token, label, route, attr:department" in await refused.text()


def test_more_keys_than_colours_sum_the_rest_as_others():
    from mint_server.console.charts import PALETTE
    from mint_server.console.usage import chart_series

    rows = [
        {"start": 0, "key": f"k{i}", "requests": 1, "allowed": 1, "denied": 0, "credits": 10 - i} for i in range(10)
    ]
    shaped = chart_series(rows, "credits", [0, 3600], None)
    names = [s.name for s in shaped["series"]]
    assert names == [f"k{i}" for i in range(len(PALETTE) - 1)] + ["others"]
    assert shaped["values"][0]["others"] == sum(10 - i for i in range(len(PALETTE) - 1, 10))
    assert shaped["values"][1] == {}  # an empty slot stays empty, charted as zero
    assert len(shaped["totals"]) == 10  # the table lists every key


POLICY = """\
name: ci-deploys
provider: oidc
issuer: {issuer}
audience: satgate
trust_rules:
  - match:
      claims: {{sub: "ci-*"}}
    issue: {{budget_credits: {budget}, scopes: ["api:read"], ttl: 1h}}
"""


async def test_an_admin_creates_and_edits_a_policy_and_the_next_exchange_follows(idp, mint_server, keyring):
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:admin"))
    form_page = await (await mint_server.client.get("/console/new-policy")).text()
    csrf = csrf_of(form_page)
    assert 'label for="document"' in form_page

    async def post(path, **data):
        return await mint_server.client.post(path, data={"csrf_token": csrf, **data}, allow_redirects=False)

    not_yaml = await post("/console/new-policy", document="name: [unclosed")
    assert not_yaml.status == 400 and "not YAML: line 1" in await not_yaml.text()
    invalid = await post("/console/new-policy", document=POLICY.format(issuer=idp.issuer, budget=-1))
    text = await invalid.text()
    assert invalid.status == 400 and "budget_credits" in text and "name: [unclosed" not in text
    assert POLICY.format(issuer=idp.issuer, budget=-1).splitlines()[0] in text  # what was typed is kept
    host_path = await post("/console/new-policy", document=POLICY.format(issuer=idp.issuer, budget=9) + "ca_file: /x\n")
    assert host_path.status == 400 and "ca_file" in await host_path.text()

    created = await post("/console/new-policy", document=POLICY.format(issuer=idp.issuer, budget=9))
    assert (created.status, created.headers["Location"]) == (303, "/console/policies/ci-deploys")
    _, issued = await mint_server.exchange(idp.token("ci-1", "satgate"))
    assert issued["budget_credits"] == 9

    edited = await post(
        "/console/policies/ci-deploys", document=POLICY.format(issuer=idp.issuer, budget=20), expected_version="1"
    )
    assert edited.status == 303
    _, issued = await mint_server.exchange(idp.token("ci-2", "satgate"))
    assert issued["budget_credits"] == 20  # the very next exchange follows the edit

    stale = await post(
        "/console/policies/ci-deploys", document=POLICY.format(issuer=idp.issuer, budget=30), expected_version="1"
    )
    assert stale.status == 409 and "is at version 2, not 1" in await stale.text()
    renamed = await post(
        "/console/policies/ci-deploys",
        document=POLICY.format(issuer=idp.issuer, budget=30).replace("ci-deploys", "other"),
        expected_version="2",
    )
    assert renamed.status == 400 and "keeps its name" in await renamed.text()

    html = await (await mint_server.client.get("/console/policies/ci-deploys")).text()
    assert "Version 2: update" in html and "Version 1: create" in html
    assert re.search(r"<del>-\s+budget_credits: 9</del><ins>\+\s+budget_credits: 20</ins>", html)
    assert 'name="expected_version" value="2"' in html and "Save version 3" in html

    disabled = await post("/console/policies/ci-deploys/disable", back="/console/policies/ci-deploys")
    assert disabled.headers["Location"] == "/console/policies/ci-deploys"
    status, refused = await mint_server.exchange(idp.token("ci-3", "satgate"))
    assert (status, refused["error"]) == (403, "policy_disabled")
    unconfirmed = await post("/console/policies/ci-deploys/delete")
    assert unconfirmed.status == 400
    deleted = await post("/console/policies/ci-deploys/delete", confirm="on")
    assert deleted.headers["Location"] == "/console/policies"
    assert (await mint_server.client.get("/console/policies/ci-deploys")).status == 404


async def test_a_viewer_reads_policies_without_write_controls_and_a_forged_edit_is_403(idp, mint_server, keyring):
    admin = admin_token(keyring, "acme", "satgate:admin")
    headers = {"Authorization": f"Bearer {admin}"}
    body = {"document": __import__("yaml").safe_load(POLICY.format(issuer=idp.issuer, budget=9))}
    assert (await mint_server.client.post("/api/admin/policies", headers=headers, json=body)).status in (200, 201)
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:viewer"))
    html = await (await mint_server.client.get("/console/policies/ci-deploys")).text()
    assert "budget_credits: 9" in html and "Version 1: create" in html
    assert "<textarea" not in html and '<form method="post" action="/console/policies' not in html
    listing = await (await mint_server.client.get("/console/policies")).text()
    assert "New trust policy" not in listing and "Disable" not in listing
    forged = await mint_server.client.post(
        "/console/policies/ci-deploys",
        data={"csrf_token": csrf_of(html), "document": POLICY.format(issuer=idp.issuer, budget=999)},
        allow_redirects=False,
    )
    assert forged.status == 403
    assert (await mint_server.client.get("/console/new-policy")).status == 403
    file_policy = await (await mint_server.client.get("/console/policies/agents")).text()
    assert "a policy file (read-only here" in file_policy and "History" not in file_policy
