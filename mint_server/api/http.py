"""The Mint process: HTTP/JSON (aiohttp) and gRPC (grpc.aio) on one event loop, one MintService."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from mint_server.admin.service import AdminService, Caller, DelegateRequest
from mint_server.api.openapi import openapi_document
from mint_server.api.operations import OPERATIONS, Operation
from mint_server.audit.webhooks import WebhookDispatcher
from mint_server.exchange.service import ExchangeDenied, MintService
from mint_server.identity.base import BadRequest
from satgate.audit import audit_csv
from satgate.caveats import Denial
from satgate.control_plane.store import STORE_ERRORS
from satgate.tokens.bearer import bearer_token
from satgate.tokens.verify import VerifiedToken

SERVICE = web.AppKey("service", MintService)
ADMIN = web.AppKey("admin", AdminService)
WEBHOOKS = web.AppKey("webhooks", WebhookDispatcher)
MAX_BODY_BYTES = 64 * 1024
log = structlog.get_logger("satgate.mint")


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
    """Refusals become JSON errors with their status; a control plane that cannot answer, 503."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ExchangeDenied as denied:
            return error(denied.status, denied.error, denied.message, denied.retry_after)
        except STORE_ERRORS as exc:  # the control plane's database is down: change nothing, say so
            log.error("control_plane_unavailable", path=request.path, detail=(str(exc).splitlines() or [""])[0])
            return error(503, "unavailable", "control plane unavailable")

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
            result = await service.exchange_aws(
                doc.get("iam_request"), source=request.remote or "", trace_headers=request.headers
            )
        else:
            credentials = doc.get("credentials")
            if credentials is None:
                header = bearer_token(request.headers.get("Authorization", ""))
                credentials = None if isinstance(header, Denial) else header
            if isinstance(credentials, str):
                credentials = credentials.strip()  # as the header's value is: a file's trailing newline is no error
            if not isinstance(credentials, str) or not credentials:
                return error(400, "bad_request", "give credentials (a JWT) or provider=aws with iam_request")
            result = await service.exchange_jwt(credentials, source=request.remote or "", trace_headers=request.headers)
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
    return Caller.http(request.method, request.path, request.host, request.remote)


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


def _arguments(request: web.Request, body: object) -> dict[str, object]:
    """An operation's request: path parameters, then the query (GET, DELETE) or the JSON body (POST, PUT)."""
    if request.method in ("GET", "DELETE"):
        arguments: dict[str, object] = dict(request.query)
    elif isinstance(body, dict):
        arguments = dict(body)
    else:
        raise ExchangeDenied(400, "bad_request", "body must be a JSON object")
    return {**arguments, **request.match_info}


def refusal_of(exc: ValidationError) -> ExchangeDenied:
    """The first problem, one line naming the field."""
    first = exc.errors()[0]
    field = ".".join(str(x) for x in first["loc"]) or "(body)"
    return ExchangeDenied(400, "bad_request", f"{field}: {first['msg'].removeprefix('Value error, ')}")


def admin_handler(operation: Operation) -> Handler:
    @_denials
    async def handle(request: web.Request) -> web.Response:
        caller = await _admin(request, operation.name)
        body = await _json_body(request) if request.method in ("POST", "PUT") else None
        try:
            arguments = operation.request.model_validate(_arguments(request, body))
        except ValidationError as exc:
            raise refusal_of(exc) from None
        result = await operation.perform(request.app[ADMIN], caller, arguments)
        if operation.name == "ExportAudit" and getattr(arguments, "format", "json") == "csv":
            return web.Response(text=audit_csv(result["records"]), content_type="text/csv")
        return web.json_response(operation.response.model_validate(result).model_dump(mode="json"))

    handle.__name__ = operation.name
    return handle


async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


PUBLIC_ROUTES = (
    ("GET", "/api/openapi.json", openapi),
    ("GET", "/healthz", healthz),
    ("GET", "/metrics", metrics),
    ("POST", "/api/mint/exchange", exchange),
    ("POST", "/api/mint/verify", verify),
    ("POST", "/api/mint/delegate", delegate),
)
ADMIN_ROUTES = tuple((op.method, op.path, admin_handler(op)) for op in OPERATIONS)
