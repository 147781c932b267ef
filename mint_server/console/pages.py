"""Sign-in, sign-out, the overview and the console's stylesheet."""

from __future__ import annotations

import time
from importlib.resources import files
from urllib.parse import urlsplit

from aiohttp import web

from mint_server.console.charts import Series, stacked_bars
from mint_server.console.session import COOKIE, set_session_cookie
from mint_server.console.web import (
    ADMIN_KEY,
    Refused,
    caller,
    checked_form,
    chrome_of,
    handler,
    page,
    see_other,
    session,
)
from mint_server.exchange.service import ExchangeDenied

SESSION_SECONDS = 8 * 3600  # the cookie's life; the credential's own expiry ends the session sooner
# span, slot: the periods every chart page offers
PERIODS = {"24h": (86400, 3600), "7d": (7 * 86400, 86400), "30d": (30 * 86400, 86400)}
STATIC = {  # the console's own files, read once: name -> (body, content type)
    name: (files("mint_server.console").joinpath(f"static/{name}").read_text(), content_type)
    for name, content_type in (("console.css", "text/css"), ("favicon.svg", "image/svg+xml"))
}


def period_of(request: web.Request) -> tuple[str, int, int]:
    period = request.query.get("period", "7d")
    if period not in PERIODS:
        period = "7d"
    return (period, *PERIODS[period])


def slot_labels(starts: list[int], step: int) -> list[str]:
    fmt = "%H:%M" if step < 86400 else "%m-%d"
    return [time.strftime(fmt, time.gmtime(start)) for start in starts]


def slot_name(step: int) -> str:
    return "hour" if step < 86400 else "day"


@handler
async def home(_request: web.Request) -> web.StreamResponse:
    return see_other("/console/overview")


async def static(request: web.Request) -> web.StreamResponse:
    found = STATIC.get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    body, content_type = found
    return web.Response(text=body, content_type=content_type, headers={"Cache-Control": "max-age=3600"})


@handler
async def overview(request: web.Request) -> web.StreamResponse:
    token = await session(request, "QueryUsage")
    period, span, step = period_of(request)
    data = await request.app[ADMIN_KEY].tokens.overview(token.tenant, time.time() - span, step)
    slots = data["slots"]
    labels = slot_labels([s["start"] for s in slots], step)
    charts = [
        stacked_bars(
            f"Requests per {slot_name(step)} (UTC)",
            "requests",
            labels,
            [{"allowed": s["allowed"], "denied": s["denied"]} for s in slots],
            series=[Series("allowed", "#1a7f37"), Series("denied", "#cf222e")],
            chart_id="requests",
        ),
        stacked_bars(
            f"Credits spent per {slot_name(step)} (UTC)",
            "credits",
            labels,
            [{"credits": s["credits"]} for s in slots],
            series=[Series("credits", "#0969da")],
            chart_id="credits",
        ),
        stacked_bars(
            f"Tokens issued per {slot_name(step)} (UTC)",
            "tokens",
            labels,
            [{"tokens issued": s["issued"]} for s in slots],
            series=[Series("tokens issued", "#8250df")],
            chart_id="issued",
        ),
    ]
    totals = {k: sum(s[k] for s in slots) for k in ("allowed", "denied", "credits", "issued")}
    return page(
        request,
        "overview.html",
        charts=charts,
        totals=totals,
        period=period,
        periods=list(PERIODS),
        usage_recorded=data["usage_recorded"],
        **chrome_of(request, token),
    )


@handler
async def sign_in_form(request: web.Request) -> web.StreamResponse:
    return page(request, "sign_in.html", signed_in=False, error=None)


def cross_site(request: web.Request) -> bool:
    """The browser says the form came from another site: Sec-Fetch-Site (cross-site), or an Origin other than
    this Mint's own. A request that carries neither (curl, old browsers) is judged by the credential alone."""
    if request.headers.get("Sec-Fetch-Site", "") in ("cross-site", "same-site"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return urlsplit(origin).netloc != request.host  # the host, not the scheme: TLS may end at a proxy in front


@handler
async def sign_in(request: web.Request) -> web.StreamResponse:
    if cross_site(request):  # a page elsewhere posting a credential it holds: a session the user never asked for
        return page(request, "sign_in.html", 403, signed_in=False, error="sign in from the console's own page")
    form = await request.post()
    credential = str(form.get("token", "")).strip()
    try:
        token = await request.app[ADMIN_KEY].authenticate(credential, caller(request), operation="ListTokens")
    except ExchangeDenied as denied:
        return page(request, "sign_in.html", denied.status, signed_in=False, error=denied.message)
    response = see_other("/console/overview")
    max_age = SESSION_SECONDS
    if token.expires_at is not None:
        max_age = max(1, min(max_age, int(token.expires_at - time.time())))
    set_session_cookie(response, credential, secure=request.secure, max_age=max_age)
    return response


@handler
async def sign_out(request: web.Request) -> web.StreamResponse:
    """A valid session signs out only with its form's CSRF token; an ended one just loses its cookie."""
    if request.cookies.get(COOKIE):
        try:
            await checked_form(request, "ListTokens")
        except Refused as refused:
            if refused.response.status == 403:
                return refused.response
    response = see_other("/console/sign-in")
    response.del_cookie(COOKIE, path="/console")
    return response
