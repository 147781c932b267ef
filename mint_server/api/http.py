"""The Mint process: HTTP/JSON (aiohttp) and gRPC (grpc.aio) on one event loop, one MintService."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mint_server.admin import AdminService, Caller, DelegateRequest
from mint_server.providers.identity import BadRequest
from mint_server.service import ExchangeDenied, MintService
from mint_server.webhooks import WebhookDispatcher
from satgate.audit import audit_csv
from satgate.caveats import Denial
from satgate.tokens.bearer import bearer_token
from satgate.tokens.verify import VerifiedToken
from satgate.urls import strip_port

SERVICE = web.AppKey("service", MintService)
ADMIN = web.AppKey("admin", AdminService)
WEBHOOKS = web.AppKey("webhooks", WebhookDispatcher)
MAX_BODY_BYTES = 64 * 1024


def error(status: int, error: str, message: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after if retry_after is not None else 60)} if status == 429 else None
    return web.json_response({"error": error, "message": message}, status=status, headers=headers)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICE].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _json_body(request: web.Request) -> object:
    if not request.can_read_body:
        return {}
    try:
        return json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ExchangeDenied(400, "bad_request", "body must be JSON") from None


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _denials(handler: Handler) -> Handler:
    """Refusals become JSON errors with their status."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ExchangeDenied as denied:
            return error(denied.status, denied.error, denied.message, denied.retry_after)

    return wrapped


@_denials
async def exchange(request: web.Request) -> web.Response:
    """`{"credentials": "<JWT>"}` or `Authorization: Bearer <JWT>`; AWS: `{"provider": "aws", "iam_request": {…}}`."""
    service = request.app[SERVICE]
    doc = await _json_body(request)
    if not isinstance(doc, dict):
        return error(400, "bad_request", "body must be a JSON object")
    try:
        if doc.get("provider") == "aws":
            result = await service.exchange_aws(doc.get("iam_request"), source=request.remote or "")
        else:
            credentials = doc.get("credentials")
            if credentials is None:
                header = bearer_token(request.headers.get("Authorization", ""))
                credentials = None if isinstance(header, Denial) else header
            if isinstance(credentials, str):
                credentials = credentials.strip()  # as the header's value is: a file's trailing newline is no error
            if not isinstance(credentials, str) or not credentials:
                return error(400, "bad_request", "give credentials (a JWT) or provider=aws with iam_request")
            result = await service.exchange_jwt(credentials, source=request.remote or "")
    except BadRequest as exc:
        return error(400, "bad_request", str(exc))
    return web.json_response(result.to_json())


@_denials
async def verify(request: web.Request) -> web.Response:
    """Is this satgate token genuine, unexpired and unrevoked, and what can it still spend?"""
    token_text = bearer_token(request.headers.get("Authorization", ""))
    if isinstance(token_text, Denial):
        return error(400, token_text.error, token_text.message)
    return web.json_response((await request.app[SERVICE].verify(token_text)).to_json())


def _caller(request: web.Request) -> Caller:
    host = strip_port((request.host or "").lower())
    return Caller(method=request.method, path=request.path, host=host, source_ip=request.remote or "")


async def _admin(request: web.Request, operation: str) -> VerifiedToken:
    credential = bearer_token(request.headers.get("Authorization", ""))
    return await request.app[ADMIN].authenticate(credential, _caller(request), operation=operation)


@_denials
async def delegate(request: web.Request) -> web.Response:
    """The holder of a token asks for a narrower child; authenticated by the parent token itself."""
    credential = bearer_token(request.headers.get("Authorization", ""))
    admin = request.app[ADMIN]
    parent = await admin.authenticate(credential, _caller(request), operation=None)
    spec = DelegateRequest.from_json(await _json_body(request))
    assert isinstance(credential, str)  # authenticate() refused anything else
    return web.json_response(await admin.delegate(parent, credential, spec))


@_denials
async def admin_revoke(request: web.Request) -> web.Response:
    caller = await _admin(request, "Revoke")
    doc = await _json_body(request)
    if not isinstance(doc, dict):
        raise ExchangeDenied(400, "bad_request", "body must be a JSON object")
    revocation_id = doc.get("id") or doc.get("token_id") or doc.get("delegation_id")
    if not isinstance(revocation_id, str):
        raise ExchangeDenied(400, "bad_request", "give id (a token_id or delegation_id)")
    reason, pre_revoke = doc.get("reason", ""), doc.get("pre_revoke", False)
    if not isinstance(pre_revoke, bool):
        raise ExchangeDenied(400, "bad_request", "pre_revoke must be true or false")
    return web.json_response(await request.app[ADMIN].revoke(caller, revocation_id, str(reason), pre_revoke=pre_revoke))


@_denials
async def admin_delegations(request: web.Request) -> web.Response:
    caller = await _admin(request, "ListDelegations")
    records = await request.app[ADMIN].delegations(
        caller, token_id=request.query.get("token_id"), delegation_id=request.query.get("delegation_id")
    )
    return web.json_response({"delegations": records})


@_denials
async def admin_audit(request: web.Request) -> web.Response:
    caller = await _admin(request, "ExportAudit")
    export_format = request.query.get("format", "json")
    if export_format not in ("json", "csv"):
        raise ExchangeDenied(400, "bad_request", f"format must be json or csv, not {export_format[:32]!r}")
    records = await request.app[ADMIN].audit_records(caller)
    if export_format == "csv":
        return web.Response(text=audit_csv(records), content_type="text/csv")
    return web.json_response({"records": records})


@_denials
async def admin_revoke_policy(request: web.Request) -> web.Response:
    caller = await _admin(request, "RevokePolicy")
    doc = await _json_body(request)
    reason = doc.get("reason", "") if isinstance(doc, dict) else ""
    return web.json_response(await request.app[ADMIN].revoke_policy(caller, request.match_info["name"], str(reason)))


PUBLIC_ROUTES = (
    ("GET", "/healthz", healthz),
    ("GET", "/metrics", metrics),
    ("POST", "/api/mint/exchange", exchange),
    ("POST", "/api/mint/verify", verify),
    ("POST", "/api/mint/delegate", delegate),
)
ADMIN_ROUTES = (
    ("POST", "/api/admin/revoke", admin_revoke),
    ("GET", "/api/admin/delegations", admin_delegations),
    ("GET", "/api/admin/audit", admin_audit),
    ("POST", "/api/admin/policies/{name}/revoke", admin_revoke_policy),
)
