"""Windowed budgets through the Mint (SPEC v2.1): trust policies issue `budget_window`, delegation adds it over
HTTP and gRPC, the registry shows each one's current window and reset, and a budget change can target it."""

import time

import grpc
import pytest

from mint_server.policies.files import load_policies
from mint_server.policies.models import PolicyError
from satgate.ledger import DebitRequest
from satgate.ledger.url import open_ledger
from satgate.ledger.windows import Period
from satgate.timefmt import format_utc
from satgate.tokens.verify import TokenVerifier
from satgate_api.admin.v1 import admin_pb2, admin_pb2_grpc
from satgate_api.mint.v1 import mint_pb2, mint_pb2_grpc

from .conftest import oidc_policy, policies
from .test_admin import admin_token, bearer


@pytest.fixture
async def mint_server(idp, start_mint):
    issue = 'budget_credits: 1000, budget_window: "100/1d", scopes: ["api:*"]'
    return await start_mint(policies(oidc_policy(idp.issuer, issue=issue)))


def _day_window(now: float) -> tuple[str, str]:
    day = Period.parse("1d")
    index = day.index(now)
    return format_utc(day.start(index)), format_utc(day.end(index))


async def test_a_policy_issues_a_windowed_budget_and_the_registry_shows_its_window(idp, mint_server, keyring):
    status, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    assert status == 200, issued
    assert issued["budget_window"] == "100/1d"
    buckets = TokenVerifier(keyring).verify(issued["token"]).buckets
    # Identity budgets (SPEC v2.2): the rule's credits per ttl period and its window, limits held by the ledger
    assert [(b.limit, str(b.period)) for b in buckets] == [(0, "1h"), (0, "1d")]
    assert [f"budget_bucket = {b.bucket_id}/{b.period}" for b in buckets] == [
        c for c in issued["caveats"] if c.startswith("budget")
    ]

    detail = await (
        await mint_server.client.get(f"/api/admin/tokens/{issued['token_id']}", headers=bearer(admin_token(keyring)))
    ).json()
    token = detail["token"]
    assert (token["bucket_id"], token["window_bucket_id"]) == (buckets[0].bucket_id, buckets[1].bucket_id)
    start, end = _day_window(time.time())
    assert token["remaining"] == 1000
    assert token["window"] == {
        "credits": 100,
        "period": "1d",
        "window_start": start,
        "resets_at": end,
        "remaining": 100,
    }


@pytest.mark.parametrize(
    "window", ["100", "0/1d", "100/0d", "100/1w", "100/10001d", "1000000000000001/1d", " 100/1d", "100/1D"]
)
def test_a_policy_with_a_malformed_window_is_refused_naming_the_field(tmp_path, window):
    with pytest.raises(PolicyError) as refused:
        _load(tmp_path, f'budget_window: "{window}"')
    assert "issue.budget_window" in str(refused.value) and "500/1d" in str(refused.value)


def test_a_rule_cannot_set_budget_window_as_a_free_caveat(tmp_path):
    with pytest.raises(PolicyError, match="budget_window come from the rule's own fields"):
        _load(tmp_path, 'caveats: {budget_window: "100/1d"}')


def _load(tmp_path, issue: str):
    path = tmp_path / "p.yaml"
    path.write_text(policies(oidc_policy("http://127.0.0.1:9", issue=issue)))
    return load_policies(path, frozenset())


async def test_delegation_adds_a_window_of_its_own_beside_the_parents_budgets(idp, mint_server, keyring, tmp_path):
    """The team pool: the child spends from the parent's budgets and its own window; the registry shows both."""
    _, parent = await mint_server.exchange(idp.token("agent-1", "satgate"))
    answer = await mint_server.client.post(
        "/api/mint/delegate", headers=bearer(parent["token"]), json={"budget_window": "10/1h", "label": "worker"}
    )
    child = await answer.json()
    assert answer.status == 200, child
    assert [c.split(" = ")[0] for c in child["caveats"]] == ["delegation", "expires", "budget_window", "label"]
    verified = TokenVerifier(keyring).verify(child["token"])
    assert [(b.limit, str(b.period) if b.period else None) for b in verified.buckets] == [
        (0, "1h"),  # the identity's budgets, limits in the ledger
        (0, "1d"),
        (10, "1h"),
    ]
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")  # the ledger the Mint's fixture shares with authz
    try:
        spent = await ledger.debit(DebitRequest("acme", verified.revocation_ids, verified.buckets, 4))
        assert spent.remaining == 6
    finally:
        await ledger.close()
    admin = bearer(admin_token(keyring))
    detail = await (await mint_server.client.get(f"/api/admin/tokens/{parent['token_id']}", headers=admin)).json()
    assert detail["token"]["remaining"] == 996 and detail["token"]["window"]["remaining"] == 96
    (delegation,) = detail["delegations"]
    assert delegation["budget_window"] == "10/1h" and delegation["remaining"] is None
    assert delegation["window"]["remaining"] == 6 and delegation["window"]["period"] == "1h"


@pytest.mark.parametrize("window", ["10", 10, "10/1y", ""])
async def test_a_malformed_delegated_window_is_a_400_naming_it(idp, mint_server, window):
    _, parent = await mint_server.exchange(idp.token("agent-1", "satgate"))
    answer = await mint_server.client.post(
        "/api/mint/delegate", headers=bearer(parent["token"]), json={"budget_window": window}
    )
    body = await answer.json()
    assert answer.status == 400 and "budget_window" in body["message"], body


async def test_a_budget_change_targets_the_window_when_asked(idp, mint_server, keyring, tmp_path):
    admin = bearer(admin_token(keyring))
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    verified = TokenVerifier(keyring).verify(issued["token"])

    async def change(**body):
        answer = await mint_server.client.post(
            "/api/admin/budgets", headers=admin, json={"id": issued["token_id"], **body}
        )
        return answer.status, await answer.json()

    assert (await change(delta=5))[1]["bucket_id"] == verified.buckets[0].bucket_id  # default: the lifetime budget
    status, changed = await change(delta=-40, bucket="window", reason="slow down")
    assert status == 200 and (changed["bucket_id"], changed["remaining"]) == (verified.buckets[1].bucket_id, 60)
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    try:
        assert (await ledger.debit(DebitRequest("acme", verified.revocation_ids, verified.buckets, 60))).remaining == 0
    finally:
        await ledger.close()
    status, refused = await change(delta=-1, bucket="window")
    assert status == 409 and "spent in the current window" in refused["message"]
    assert (await change(delta=1, bucket="weekly"))[0] == 400
    audited = [r["details"] for r in await mint_server.audit() if r["type"] == "budget_change"]
    assert [(d["delta"], d.get("window")) for d in audited] == [(5, "1h"), (-40, "1d")]  # the ttl's, the window's

    _, lifetime_only = await mint_server.exchange(idp.token("agent-2", "satgate"))
    child = await (
        await mint_server.client.post("/api/mint/delegate", headers=bearer(lifetime_only["token"]), json={})
    ).json()
    answer = await mint_server.client.post(
        "/api/admin/budgets", headers=admin, json={"id": child["delegation_id"], "delta": 1, "bucket": "window"}
    )
    assert answer.status == 400 and "carries no budget_window" in (await answer.json())["message"]


async def test_grpc_delegates_a_window_and_lists_it(idp, mint_server, keyring):
    _, parent = await mint_server.exchange(idp.token("agent-1", "satgate"))
    admin = [("authorization", f"Bearer {admin_token(keyring)}")]
    async with grpc.aio.insecure_channel(mint_server.grpc_target) as channel:
        child = await mint_pb2_grpc.MintStub(channel).Delegate(
            mint_pb2.DelegateRequest(budget_credits=50, budget_window="5/30m"),
            metadata=[("authorization", f"Bearer {parent['token']}")],
        )
        assert "budget_window = 5/30m" in child.caveats
        stub = admin_pb2_grpc.AdminStub(channel)
        detail = await stub.GetToken(admin_pb2.GetTokenRequest(token_id=parent["token_id"]), metadata=admin)
        assert detail.token.window.credits == 100 and detail.token.window.period == "1d"
        (delegation,) = detail.delegations
        assert (delegation.remaining, delegation.budget_window, delegation.window.remaining) == (50, "5/30m", 5)
        changed = await stub.ChangeBudget(
            admin_pb2.ChangeBudgetRequest(id=child.delegation_id, delta=2, bucket="window"), metadata=admin
        )
        assert changed.remaining == 7
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await mint_pb2_grpc.MintStub(channel).Delegate(
                mint_pb2.DelegateRequest(budget_window="5 per hour"),
                metadata=[("authorization", f"Bearer {parent['token']}")],
            )
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_console_shows_the_window_its_history_and_settled_requests(idp, mint_server, keyring):
    """The token page: the current window with its reset, credits per window from usage (refunds and
    settlements net), settled requests with reserved vs actual; a windowed budget change from the form."""
    from mint_server.console.web import ADMIN_KEY
    from satgate.audit import AuditEvent

    from .test_console import csrf_of, sign_in

    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    token_id = issued["token_id"]
    day = Period.parse("1d")
    today = day.index(time.time())
    usage = mint_server.client.app[ADMIN_KEY].tokens._usage
    at = lambda index: day.start(index) + 3600  # noqa: E731
    await usage.write(
        [
            (at(today), "acme", token_id, "/v1/items", "GET", 200, 7, "{}"),
            (at(today) + 1, "acme", token_id, "/v1/items", "GET", 200, -2, "{}"),  # a settlement's refund
            (at(today - 2), "acme", token_id, "/v1/items", "GET", 200, 40, "{}"),
            (at(today - 2), "acme", "f" * 32, "/v1/items", "GET", 200, 99, "{}"),  # another token's
        ],
        retain_after=0,
    )
    details = {"reserved": 5, "actual": 3, "charged": 3, "overshoot": 0, "status": 200, "request_id": "req-42"}
    await mint_server.service.audit.append(
        AuditEvent(type="debit_settled", tenant="acme", token_id=token_id, details=details)
    )
    await sign_in(mint_server, admin_token(keyring, "acme", "satgate:admin"))
    target = f"/console/tokens/{token_id}"
    html = await (await mint_server.client.get(target)).text()
    start, end = _day_window(time.time())
    assert f"100 left in the 1d window since {start}; resets {end} (budget_window 100/1d)" in html
    windows = html.split('<table class="windows">')[1].split("</table>")[0]
    rows = [[cell.strip() for cell in row.split("<td")[1:]] for row in windows.split("<tr")[2:]]
    assert len(rows) == 8 and "(current)" in rows[0][0]
    assert [row[2].removeprefix('class="number">').split("<")[0] for row in rows[:4]] == ["5", "0", "40", "0"]
    settled = html.split('<table class="settled">')[1].split("</table>")[0]
    assert "req-42" in settled and '<td class="number">5</td><td class="number">3</td>' in settled

    changed = await mint_server.client.post(
        f"{target}/budget",
        data={"csrf_token": csrf_of(html), "delta": "-30", "bucket": "window", "reason": "r"},
        allow_redirects=False,
    )
    assert changed.status == 303
    after = await (await mint_server.client.get(target)).text()
    assert "70 left in the 1d window" in after and "(1000 remaining in this 1h period)" in after
