"""What every console page shares: templates, the security headers, the session check (the credential in the
cookie, authenticated for the page's admin operation with the API's role table) and CSRF-checked form posts."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
from aiohttp import web

from mint_server.admin.roles import OPERATION_ROLES, allows, role_of
from mint_server.admin.service import AdminService, Caller
from mint_server.console.session import COOKIE, CSRF_FIELD, csrf_token, csrf_valid
from mint_server.exchange.service import ExchangeDenied, MintService
from satgate.timefmt import format_utc
from satgate.tokens.verify import VerifiedToken

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("mint_server.console"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
TEMPLATES.filters["utc"] = lambda seconds: format_utc(seconds) if seconds is not None else ""
ADMIN_KEY = web.AppKey("admin", AdminService)
SERVICE_KEY = web.AppKey("service", MintService)
# No inline script or style anywhere: the pages' CSS is a file of the console's own.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def caller(request: web.Request) -> Caller:
    return Caller.http(request.method, request.path, request.host, request.remote)


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    html = TEMPLATES.get_template(template).render(path=request.path, **context)
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


class Refused(Exception):
    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response


def refused_page(request: web.Request, status: int, message: str, token: VerifiedToken | None = None) -> web.Response:
    chrome = chrome_of(request, token) if token is not None else {"signed_in": False}
    return page(request, "refused.html", status, message=message, **chrome)


async def session(request: web.Request, operation: str) -> VerifiedToken:
    """The signed-in credential, allowed `operation`; else Refused with the sign-in page or a 403 page."""
    credential = request.cookies.get(COOKIE)
    if not credential:
        raise Refused(see_other("/console/sign-in"))
    try:
        return await request.app[ADMIN_KEY].authenticate(credential, caller(request), operation=operation)
    except ExchangeDenied as denied:
        if denied.status == 401:
            gone = see_other("/console/sign-in")
            gone.del_cookie(COOKIE, path="/console")
            raise Refused(gone) from None
        raise Refused(refused_page(request, denied.status, denied.message)) from None


def chrome_of(request: web.Request, token: VerifiedToken) -> dict[str, Any]:
    """What every signed-in page shows: who, which role, what it may do, the CSRF token its forms carry."""
    role = role_of(token)
    keyring = request.app[SERVICE_KEY].keyring.current
    return {
        "signed_in": True,
        "tenant": token.tenant,
        "role": role,
        "can": {name: allows(role, name) for name in OPERATION_ROLES},
        "csrf": csrf_token(keyring, token),
        "now": time.time(),
    }


async def checked_form(request: web.Request, operation: str) -> tuple[VerifiedToken, Any]:
    """A form post: the session allowed `operation` and the form's CSRF token bound to that session."""
    token = await session(request, operation)
    form = await request.post()
    if not csrf_valid(request.app[SERVICE_KEY].keyring.current, token, str(form.get(CSRF_FIELD, ""))):
        raise Refused(refused_page(request, 403, "the form's CSRF token is missing or wrong"))
    return token, form


def handler(view: View) -> View:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await view(request)
        except Refused as refused:
            return refused.response
        except ExchangeDenied as denied:  # the ledger or control plane cannot answer (503), …
            return refused_page(request, denied.status, denied.message)

    return handle
