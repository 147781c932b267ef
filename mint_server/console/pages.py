"""Console pages (aiohttp + Jinja2, no JavaScript build): each page or action authenticates the session's
credential for the admin operation it performs — the same role table as the API — and runs that operation."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from mint_server.admin import AdminService, Caller
from mint_server.console.charts import Series, stacked_bars
from mint_server.console.session import COOKIE, CSRF_FIELD, csrf_token, csrf_valid, set_session_cookie
from mint_server.managed_policies import Actor, PolicyRefused
from mint_server.roles import OPERATION_ROLES, allows, role_of
from mint_server.service import ExchangeDenied, MintService
from satgate.audit import CATEGORIES, audit_csv, category_of
from satgate.audit.retention import verify_retained
from satgate.timefmt import format_utc
from satgate.tokens.verify import VerifiedToken

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("mint_server.console"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
TEMPLATES.filters["utc"] = lambda seconds: format_utc(seconds) if seconds is not None else ""
SESSION_SECONDS = 8 * 3600  # the cookie's life; the credential's own expiry ends the session sooner
ADMIN_KEY = web.AppKey("admin", AdminService)
SERVICE_KEY = web.AppKey("service", MintService)


def _caller(request: web.Request) -> Caller:
    return Caller.http(request.method, request.path, request.host, request.remote)


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    html = TEMPLATES.get_template(template).render(path=request.path, **context)
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers.update(
        {
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }
    )
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


class Refused(Exception):
    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response


async def _session(request: web.Request, operation: str) -> VerifiedToken:
    """The signed-in credential, allowed `operation`; else Refused with the sign-in page or a 403 page."""
    credential = request.cookies.get(COOKIE)
    if not credential:
        raise Refused(_see_other("/console/sign-in"))
    try:
        return await request.app[ADMIN_KEY].authenticate(credential, _caller(request), operation=operation)
    except ExchangeDenied as denied:
        if denied.status == 403:
            raise Refused(_page(request, "refused.html", 403, message=denied.message, signed_in=False)) from None
        if denied.status == 401:
            gone = _see_other("/console/sign-in")
            gone.del_cookie(COOKIE, path="/console")
            raise Refused(gone) from None
        raise Refused(_page(request, "refused.html", denied.status, message=denied.message, signed_in=False)) from None


def _chrome(request: web.Request, token: VerifiedToken) -> dict[str, Any]:
    """What every signed-in page shows: who, which role, the CSRF token its forms carry."""
    role = role_of(token)
    keyring = request.app[SERVICE_KEY].keyring.current
    return {
        "signed_in": True,
        "tenant": token.tenant,
        "role": role,
        "can": {name: allows(role, name) for name in OPERATION_ROLES},
        "csrf": csrf_token(keyring, token),
    }


def _handler(view):
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await view(request)
        except Refused as refused:
            return refused.response
        except ExchangeDenied as denied:  # the ledger or control plane cannot answer (503), …
            return _page(request, "refused.html", denied.status, message=denied.message, signed_in=False)

    return handle


@_handler
async def home(_request: web.Request) -> web.StreamResponse:
    return _see_other("/console/overview")


PERIODS = {"24h": (86400, 3600), "7d": (7 * 86400, 86400), "30d": (30 * 86400, 86400)}  # span, slot


@_handler
async def overview(request: web.Request) -> web.StreamResponse:
    token = await _session(request, "QueryUsage")
    period = request.query.get("period", "7d")
    if period not in PERIODS:
        period = "7d"
    span, step = PERIODS[period]
    data = await request.app[ADMIN_KEY].tokens.overview(token.tenant, time.time() - span, step)
    slots = data["slots"]
    fmt = "%H:%M" if step < 86400 else "%m-%d"
    labels = [time.strftime(fmt, time.gmtime(s["start"])) for s in slots]
    charts = [
        stacked_bars(
            f"Requests per {'hour' if step < 86400 else 'day'} (UTC)",
            "requests",
            labels,
            [{"allowed": s["allowed"], "denied": s["denied"]} for s in slots],
            series=[Series("allowed", "#1a7f37"), Series("denied", "#cf222e")],
            chart_id="requests",
        ),
        stacked_bars(
            "Credits spent (UTC)",
            "credits",
            labels,
            [{"credits": s["credits"]} for s in slots],
            series=[Series("credits", "#0969da")],
            chart_id="credits",
        ),
        stacked_bars(
            "Tokens issued (UTC)",
            "tokens",
            labels,
            [{"tokens issued": s["issued"]} for s in slots],
            series=[Series("tokens issued", "#8250df")],
            chart_id="issued",
        ),
    ]
    totals = {k: sum(s[k] for s in slots) for k in ("allowed", "denied", "credits", "issued")}
    return _page(
        request,
        "overview.html",
        charts=charts,
        totals=totals,
        period=period,
        periods=list(PERIODS),
        usage_recorded=data["usage_recorded"],
        **_chrome(request, token),
    )


@_handler
async def sign_in_form(request: web.Request) -> web.StreamResponse:
    return _page(request, "sign_in.html", signed_in=False, error=None)


@_handler
async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    credential = str(form.get("token", "")).strip()
    admin = request.app[ADMIN_KEY]
    try:
        token = await admin.authenticate(credential, _caller(request), operation="ListTokens")
    except ExchangeDenied as denied:
        return _page(request, "sign_in.html", denied.status, signed_in=False, error=denied.message)
    response = _see_other("/console/overview")
    max_age = SESSION_SECONDS
    if token.expires_at is not None:
        max_age = max(1, min(max_age, int(token.expires_at - time.time())))
    set_session_cookie(response, credential, secure=request.secure, max_age=max_age)
    return response


async def _checked_form(request: web.Request, operation: str) -> tuple[VerifiedToken, Any]:
    """A form post: the session allowed `operation` and the form's CSRF token bound to that session."""
    token = await _session(request, operation)
    form = await request.post()
    if not csrf_valid(request.app[SERVICE_KEY].keyring.current, token, str(form.get(CSRF_FIELD, ""))):
        raise Refused(
            _page(request, "refused.html", 403, message="the form's CSRF token is missing or wrong", signed_in=False)
        )
    return token, form


@_handler
async def sign_out(request: web.Request) -> web.StreamResponse:
    """A valid session signs out only with its form's CSRF token; an ended one just loses its cookie."""
    if request.cookies.get(COOKIE):
        try:
            await _checked_form(request, "ListTokens")
        except Refused as refused:
            if refused.response.status == 403:
                return refused.response
    response = _see_other("/console/sign-in")
    response.del_cookie(COOKIE, path="/console")
    return response


@_handler
async def tokens(request: web.Request) -> web.StreamResponse:
    token = await _session(request, "ListTokens")
    label, policy = request.query.get("label") or None, request.query.get("policy") or None
    query = {"label": label or "", "policy": policy or ""}
    listed = await request.app[ADMIN_KEY].tokens.list_tokens(token, policy=policy, label=label, before=None, limit=100)
    return _page(request, "tokens.html", tokens=listed["tokens"], query=query, **_chrome(request, token))


def _tree(delegations: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Delegations in tree order with their depth (1: a child of the root token)."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for d in delegations:
        children.setdefault(d["parent_delegation_id"], []).append(d)
    ordered: list[tuple[int, dict[str, Any]]] = []

    def walk(parent: str | None, depth: int) -> None:
        for child in children.get(parent, []):
            ordered.append((depth, child))
            walk(child["delegation_id"], depth + 1)

    walk(None, 1)
    return ordered


@_handler
async def token_page(request: web.Request) -> web.StreamResponse:
    token = await _session(request, "GetToken")
    token_id = request.match_info["token_id"]
    if not re.fullmatch(r"[0-9a-f]{32}", token_id):
        return _page(request, "refused.html", 400, message="not a token id", **_chrome(request, token))
    try:
        detail = await request.app[ADMIN_KEY].tokens.get(token, token_id)
    except ExchangeDenied as denied:
        return _page(request, "refused.html", denied.status, message=denied.message, **_chrome(request, token))
    return _page(
        request,
        "token.html",
        detail=detail,
        tree=_tree(detail["delegations"]),
        **_chrome(request, token),
    )


@_handler
async def revoke(request: web.Request) -> web.StreamResponse:
    token, form = await _checked_form(request, "Revoke")
    target = request.match_info["token_id"]
    revocation_id = str(form.get("id", target))
    try:
        await request.app[ADMIN_KEY].revoke(token, revocation_id, str(form.get("reason", ""))[:200])
    except ExchangeDenied as denied:
        return _page(request, "refused.html", denied.status, message=denied.message, **_chrome(request, token))
    return _see_other(f"/console/tokens/{target}")


async def _audit_records(
    request: web.Request, token: VerifiedToken, chain: list[Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The tenant's records, filtered by type, category and age as the API's ExportAudit filters them."""
    filters = {k: request.query.get(k, "") for k in ("type", "category", "since")}
    if filters["category"] and filters["category"] not in CATEGORIES:
        raise ExchangeDenied(400, "bad_request", f"category must be one of {', '.join(CATEGORIES)}")
    records = await request.app[ADMIN_KEY].audit_records(
        token,
        since=filters["since"] or None,
        event_type=filters["type"] or None,
        category=filters["category"] or None,
        chain=chain,
    )
    return records, filters


@_handler
async def audit_page(request: web.Request) -> web.StreamResponse:
    token = await _session(request, "ExportAudit")
    service = request.app[SERVICE_KEY]
    broken, chain = await verify_retained(service.audit, service.keyring.current)  # one read serves both
    records, filters = await _audit_records(request, token, chain)
    return _page(
        request,
        "audit.html",
        records=list(reversed(records))[:500],
        total=len(records),
        filters=filters,
        categories=CATEGORIES,
        category_of=category_of,
        chain={"broken_at": broken, "records": len(chain)},
        export_query=urlencode({k: v for k, v in filters.items() if v}),
        **_chrome(request, token),
    )


@_handler
async def audit_export(request: web.Request) -> web.StreamResponse:
    token = await _session(request, "ExportAudit")
    records, _filters = await _audit_records(request, token)
    if request.query.get("format") == "csv":
        body, content_type, suffix = audit_csv(records), "text/csv", "csv"
    else:
        body, content_type, suffix = (
            "".join(json.dumps(r, sort_keys=True) + "\n" for r in records),
            "application/x-ndjson",
            "jsonl",
        )
    disposition = f'attachment; filename="satgate-audit-{token.tenant}.{suffix}"'
    return web.Response(text=body, content_type=content_type, headers={"Content-Disposition": disposition})


@_handler
async def policies_page(request: web.Request) -> web.StreamResponse:
    token = await _session(request, "ListPolicies")
    listed = await request.app[ADMIN_KEY].managed.list_policies(token.tenant)
    return _page(request, "policies.html", policies=listed, **_chrome(request, token))


@_handler
async def change_budget(request: web.Request) -> web.StreamResponse:
    token, form = await _checked_form(request, "ChangeBudget")
    target = request.match_info["token_id"]
    try:
        delta = int(str(form.get("delta", "")).strip())
    except ValueError:
        delta = 0
    if delta == 0:
        message = "delta: give a whole number of credits, positive to top up, negative to cut"
        return _page(request, "refused.html", 400, message=message, **_chrome(request, token))
    budget_id = str(form.get("id", target))
    try:
        await request.app[ADMIN_KEY].tokens.change_budget(token, budget_id, delta, str(form.get("reason", ""))[:200])
    except ExchangeDenied as denied:
        return _page(request, "refused.html", denied.status, message=denied.message, **_chrome(request, token))
    return _see_other(f"/console/tokens/{target}")


async def _policy_switch(request: web.Request, enabled: bool) -> web.StreamResponse:
    token, _form = await _checked_form(request, "EnablePolicy" if enabled else "DisablePolicy")
    actor = Actor(token.tenant, token.token_id)
    try:
        await request.app[ADMIN_KEY].managed.set_enabled(actor, request.match_info["name"], enabled)
    except PolicyRefused as refused:
        return _page(request, "refused.html", refused.status, message=refused.message, **_chrome(request, token))
    return _see_other("/console/policies")


@_handler
async def enable_policy(request: web.Request) -> web.StreamResponse:
    return await _policy_switch(request, True)


@_handler
async def disable_policy(request: web.Request) -> web.StreamResponse:
    return await _policy_switch(request, False)


ROUTES = (
    ("GET", "/console", home),
    ("GET", "/console/overview", overview),
    ("GET", "/console/sign-in", sign_in_form),
    ("POST", "/console/sign-in", sign_in),
    ("POST", "/console/sign-out", sign_out),
    ("GET", "/console/tokens", tokens),
    ("GET", "/console/tokens/{token_id}", token_page),
    ("POST", "/console/tokens/{token_id}/revoke", revoke),
    ("GET", "/console/audit", audit_page),
    ("GET", "/console/audit/export", audit_export),
    ("GET", "/console/policies", policies_page),
    ("POST", "/console/tokens/{token_id}/budget", change_budget),
    ("POST", "/console/policies/{name}/enable", enable_policy),
    ("POST", "/console/policies/{name}/disable", disable_policy),
)
