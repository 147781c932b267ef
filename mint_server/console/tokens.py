"""Tokens: search, one token with its delegation tree and budget changes, revoke (member) and budget change
(admin)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from mint_server.console.web import ADMIN_KEY, checked_form, chrome_of, handler, page, refused_page, see_other, session
from mint_server.exchange.service import ExchangeDenied

TOKEN_ID = re.compile(r"[0-9a-f]{32}")
SETTLED_SINCE, SETTLED_SHOWN = "7d", 50  # the token page's settled requests: the newest, of the last week


@handler
async def tokens(request: web.Request) -> web.StreamResponse:
    token = await session(request, "ListTokens")
    label, policy = request.query.get("label") or None, request.query.get("policy") or None
    query = {"label": label or "", "policy": policy or ""}
    listed = await request.app[ADMIN_KEY].tokens.list_tokens(token, policy=policy, label=label, before=None, limit=100)
    return page(request, "tokens.html", tokens=listed["tokens"], query=query, **chrome_of(request, token))


def delegation_tree(delegations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The delegations as nested nodes ({"delegation": …, "children": […]}) under the root token."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for d in delegations:
        children.setdefault(d["parent_delegation_id"], []).append(d)

    def nodes(parent: str | None) -> list[dict[str, Any]]:
        return [{"delegation": d, "children": nodes(d["delegation_id"])} for d in children.get(parent, [])]

    return nodes(None)


@handler
async def token_page(request: web.Request) -> web.StreamResponse:
    token = await session(request, "GetToken")
    token_id = request.match_info["token_id"]
    if not TOKEN_ID.fullmatch(token_id):
        return refused_page(request, 400, "not a token id", token)
    try:
        detail = await request.app[ADMIN_KEY].tokens.get(token, token_id)
    except ExchangeDenied as denied:
        return refused_page(request, denied.status, denied.message, token)
    tree = delegation_tree(detail["delegations"])
    record = detail["token"]
    admin = request.app[ADMIN_KEY]
    history = (
        await admin.tokens.window_history(token.tenant, token_id, record["budget_window"])
        if record["budget_window"]
        else []
    )
    settled = [  # what settling after the response changed: reserved at the check vs the upstream's actual cost
        r
        for r in await admin.audit_records(token, since=SETTLED_SINCE, event_type="debit_settled")
        if r.get("token_id") == token_id
    ][-SETTLED_SHOWN:]
    return page(
        request,
        "token.html",
        detail=detail,
        tree=tree,
        history=history,
        settled=list(reversed(settled)),
        **chrome_of(request, token),
    )


@handler
async def revoke(request: web.Request) -> web.StreamResponse:
    token, form = await checked_form(request, "Revoke")
    target = request.match_info["token_id"]
    if not form.get("confirm"):
        return refused_page(request, 400, "confirm: tick the box to confirm the revocation", token)
    try:
        await request.app[ADMIN_KEY].revoke(token, str(form.get("id", target)), str(form.get("reason", ""))[:200])
    except ExchangeDenied as denied:
        return refused_page(request, denied.status, denied.message, token)
    return see_other(f"/console/tokens/{target}")


@handler
async def change_budget(request: web.Request) -> web.StreamResponse:
    token, form = await checked_form(request, "ChangeBudget")
    target = request.match_info["token_id"]
    try:
        delta = int(str(form.get("delta", "")).strip())
    except ValueError:
        delta = 0
    if delta == 0:
        message = "delta: give a whole number of credits, positive to top up, negative to cut"
        return refused_page(request, 400, message, token)
    budget_id = str(form.get("id", target))
    bucket = str(form.get("bucket", ""))
    try:
        await request.app[ADMIN_KEY].tokens.change_budget(
            token, budget_id, delta, str(form.get("reason", ""))[:200], bucket=bucket
        )
    except ExchangeDenied as denied:
        return refused_page(request, denied.status, denied.message, token)
    return see_other(f"/console/tokens/{target}")
