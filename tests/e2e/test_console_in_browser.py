"""The console in a real headless Chromium against the whole stack (real Envoy on both ext_authz transports, authz,
Mint, the demo issuer): each role signs in and walks every page — screenshot, axe-core and no console error on
each — a member revokes a token with the keyboard and the next request through Envoy is refused, an admin creates
and edits a trust policy and the next exchange follows each version, the audit log exports, and a viewer sees no
write control and gets 403 for a forged form post."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.keys import Keys

from satgate.timefmt import format_utc
from satgate.tokens.mint import mint
from satgate_dev.demo_idp import DemoIdp

from .browser import Browser

pytestmark = pytest.mark.e2e
ROLES = ("satgate:viewer", "satgate:member", "satgate:admin")


@pytest.fixture
def browser(tmp_path):
    shots, downloads = tmp_path / "screenshots", tmp_path / "downloads"
    shots.mkdir()
    downloads.mkdir()
    opened = Browser(shots, downloads)
    yield opened
    opened.close()


def admin_credential(stack_keyring, role: str) -> str:
    return mint(stack_keyring, "demo", [("expires", format_utc(time.time() + 3600)), ("scope", role)]).token


def sign_in(browser: Browser, console: str, credential: str) -> None:
    browser.open(f"{console}/sign-in", "sign-in")
    browser.find("#token").send_keys(credential)
    with browser.navigating():
        browser.find("#token").send_keys(Keys.ENTER)  # the form submits from the keyboard
    assert browser.driver.current_url.endswith("/console/overview"), browser.text()


def sign_out(browser: Browser) -> None:
    with browser.navigating():
        browser.find("header form button").click()
    assert browser.driver.current_url.endswith("/console/sign-in")


def walk(browser: Browser, console: str, role: str, token_id: str) -> None:
    """Every page a role can read, each checked (screenshot, axe, console errors)."""
    short = role.split(":")[1]
    for path, shot in [
        ("/overview?period=24h", "overview"),
        ("/usage?by=label&period=24h", "usage-by-label"),
        ("/usage?by=route&metric=requests&period=24h", "usage-by-route"),
        ("/usage?by=token&period=7d", "usage-by-token"),
        ("/tokens", "tokens"),
        (f"/tokens/{token_id}", "token"),
        ("/policies", "policies"),
        ("/policies/local-demo", "policy-file"),
        ("/audit", "audit"),
    ]:
        browser.open(console + path, f"{short}-{shot}")
        assert "Not allowed" not in browser.text(), (path, browser.text())


def exchange(mint_url: str, idp: DemoIdp, subject: str) -> dict:
    response = httpx.post(f"{mint_url}/api/mint/exchange", json={"credentials": idp.token(subject, "satgate")})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_console_in_a_real_browser(stack, stack_keyring, client, browser):
    mint_url = f"http://127.0.0.1:{stack.ports.mint}"
    console = f"{mint_url}/console"
    idp = DemoIdp.load(stack.idp_state)
    agent = exchange(mint_url, idp, f"agent-{time.monotonic_ns()}")
    agent_headers = {"Authorization": f"Bearer {agent['token']}"}
    child = httpx.post(
        f"{mint_url}/api/mint/delegate", headers=agent_headers, json={"budget_credits": 5, "label": "child"}
    ).json()
    assert [client.get("/v1/items", headers=agent_headers).status_code for _ in range(2)] == [200, 200]
    token_id = agent["token_id"]

    # a viewer: every page, no write control anywhere, and a forged post is refused
    sign_in(browser, console, admin_credential(stack_keyring, "satgate:viewer"))
    walk(browser, console, "satgate:viewer", token_id)
    for path in (f"/tokens/{token_id}", "/policies", "/policies/local-demo"):
        browser.open(console + path, "viewer-write-controls")
        posts = [f.get_attribute("action") for f in browser.all("form[method=post]")]
        assert posts == [f"{console}/sign-out"], (path, posts)
    browser.open(f"{console}/tokens/{token_id}", "viewer-forging")
    csrf = browser.find("header form input[name=csrf_token]").get_attribute("value")
    with browser.navigating():
        browser.driver.execute_script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
            "for (const [k, v] of Object.entries(arguments[1])) {"
            "  const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i); }"
            "document.body.append(f); f.submit();",
            f"{console}/tokens/{token_id}/revoke",
            {"csrf_token": csrf, "id": token_id, "confirm": "on"},
        )
    browser.checked("viewer-forged-post-refused", status=403)
    assert "Not allowed" in browser.text() and "satgate:member" in browser.text()
    assert client.get("/v1/items", headers=agent_headers).status_code == 200  # nothing was revoked
    with browser.navigating():
        browser.driver.find_element("link text", "Back to the console").click()
    sign_out(browser)

    # a member revokes the agent's token by keyboard alone; the next request through Envoy is refused
    sign_in(browser, console, admin_credential(stack_keyring, "satgate:member"))
    walk(browser, console, "satgate:member", token_id)
    browser.open(f"{console}/tokens/{token_id}", "member-token")
    assert child["delegation_id"] in browser.text()  # the delegation tree
    confirm = browser.find(f"#reason-{token_id}").find_element("xpath", "following::input[@name='confirm'][1]")
    browser.focus_by_tab(browser.find(f"#reason-{token_id}"))
    browser.driver.switch_to.active_element.send_keys("leaked in a CI log")
    browser.focus_by_tab(confirm)
    confirm.send_keys(Keys.SPACE)
    browser.driver.switch_to.active_element.send_keys(Keys.TAB)
    with browser.navigating():
        browser.driver.switch_to.active_element.send_keys(Keys.ENTER)
    browser.checked("member-revoked")
    assert "revoked" in browser.find("dl").text
    refused = client.get("/v1/items", headers=agent_headers)
    assert (refused.status_code, refused.json()["error"]) == (401, "revoked")
    child_refused = client.get("/v1/items", headers={"Authorization": f"Bearer {child['token']}"})
    assert child_refused.status_code == 401  # the whole tree below it
    sign_out(browser)

    # an admin writes a trust policy in the console; each version decides the next exchange
    sign_in(browser, console, admin_credential(stack_keyring, "satgate:admin"))
    walk(browser, console, "satgate:admin", token_id)
    browser.open(f"{console}/new-policy", "admin-new-policy")
    editor = browser.find("#document")
    editor.clear()
    editor.send_keys(policy_yaml(stack.issuer, budget=-3))
    with browser.navigating():
        browser.find("form.stacked button").click()
    browser.checked("admin-policy-refused", status=400)
    assert "budget_credits" in browser.find("[role=alert]").text  # the validator's own words, the text kept
    editor = browser.find("#document")
    editor.clear()
    editor.send_keys(policy_yaml(stack.issuer, budget=7))
    with browser.navigating():
        browser.find("form.stacked button").click()
    browser.checked("admin-policy-created")
    assert browser.driver.current_url.endswith("/console/policies/console-bots")
    assert exchange(mint_url, idp, "bot-1")["budget_credits"] == 7
    editor = browser.find("#document")
    editor.clear()
    editor.send_keys(policy_yaml(stack.issuer, budget=11))
    with browser.navigating():
        browser.find("#document").find_element("xpath", "following::button[1]").click()
    browser.checked("admin-policy-edited")
    assert exchange(mint_url, idp, "bot-2")["budget_credits"] == 11  # the very next exchange follows the edit
    assert "Version 2: update" in browser.text() and "+    budget_credits: 11" in browser.find("pre.diff").text

    # the audit log, exported as CSV by clicking its link, holds what was just done
    browser.open(f"{console}/audit", "admin-audit")
    assert "Chain verified" in browser.find("[role=status]").text
    browser.driver.find_element("link text", "Export CSV").click()
    exported = wait_for_download(browser.downloads, "satgate-audit-demo.csv")
    rows = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert {"revoke", "policy_change", "admin_denied"} <= {r["type"] for r in rows}
    if os.environ.get("SATGATE_DOCS_SCREENSHOTS"):  # the pictures in docs/console.md: rerun with it set to docs/images
        for page, name in (("/overview?period=24h", "console-overview"), ("/tokens", "console-tokens")):
            browser.driver.get(console + page)
            browser.driver.save_screenshot(str(Path(os.environ["SATGATE_DOCS_SCREENSHOTS"]) / f"{name}.png"))

    # the checker is live here: a control without a label is caught on the very page that passed
    browser.driver.execute_script("document.querySelector('main').append(document.createElement('input'))")
    assert "label" in {v["id"] for v in browser.axe()}
    sign_out(browser)
    assert len(browser.visited) >= 3 * 9 + 8


def policy_yaml(issuer: str, budget: int) -> str:
    # typed into a textarea: no indentation the browser would add, flow style for the nested parts
    return (
        "name: console-bots\nprovider: oidc\n"
        f"issuer: {issuer}\naudience: satgate\n"
        'trust_rules:\n- match: {claims: {sub: "bot-*"}}\n'
        f'  issue: {{budget_credits: {budget}, scopes: ["api:read"], ttl: 10m}}\n'
    )


def wait_for_download(directory: Path, name: str, timeout: float = 10) -> Path:
    deadline = time.monotonic() + timeout
    target = directory / name
    while not (target.exists() and not list(directory.glob("*.crdownload"))):
        assert time.monotonic() < deadline, f"no {name} in {list(directory.iterdir())}"
        time.sleep(0.05)
    return target
