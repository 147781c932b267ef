"""The Mint process: HTTP/JSON (aiohttp) and gRPC (grpc.aio) on one event loop, one MintService."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mint_server.admin import AdminService, Caller, DelegateRequest
from mint_server.api.grpc import AdminGrpc, MintGrpc
from mint_server.providers import aws
from mint_server.providers.identity import BadRequest
from mint_server.service import ExchangeDenied, MintService, MintSettings, PolicyStore, RateLimiter
from mint_server.webhooks import WebhookDispatcher, WebhookTarget
from satgate.audit import audit_csv, open_audit_log
from satgate.caveats import Denial
from satgate.config import Config
from satgate.delegations import ControlPlaneStore
from satgate.keyring import KeyringFile
from satgate.ledger.url import open_ledger
from satgate.timefmt import parse_duration
from satgate.tokens.bearer import bearer_token
from satgate.tokens.verify import TokenVerifier, VerifiedToken
from satgate.urls import strip_port
from satgate_api.admin.v1 import admin_pb2_grpc
from satgate_api.mint.v1 import mint_pb2_grpc

SERVICE = web.AppKey("service", MintService)
ADMIN = web.AppKey("admin", AdminService)
WEBHOOKS = web.AppKey("webhooks", WebhookDispatcher)
_MAX_BODY_BYTES = 64 * 1024


def _error(status: int, error: str, message: str) -> web.Response:
    headers = {"Retry-After": "60"} if status == 429 else None
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
            return _error(denied.status, denied.error, denied.message)

    return wrapped


@_denials
async def exchange(request: web.Request) -> web.Response:
    """`{"credentials": "<JWT>"}` or `Authorization: Bearer <JWT>`; AWS: `{"provider": "aws", "iam_request": {…}}`."""
    service = request.app[SERVICE]
    doc = await _json_body(request)
    if not isinstance(doc, dict):
        return _error(400, "bad_request", "body must be a JSON object")
    try:
        if doc.get("provider") == "aws":
            result = await service.exchange_aws(doc.get("iam_request"), source=request.remote or "")
        else:
            credentials = doc.get("credentials")
            if credentials is None:
                header = bearer_token(request.headers.get("Authorization", ""))
                credentials = None if isinstance(header, Denial) else header
            if not isinstance(credentials, str) or not credentials:
                return _error(400, "bad_request", "give credentials (a JWT) or provider=aws with iam_request")
            result = await service.exchange_jwt(credentials, source=request.remote or "")
    except BadRequest as exc:
        return _error(400, "bad_request", str(exc))
    return web.json_response(result.to_json())


@_denials
async def verify(request: web.Request) -> web.Response:
    """Is this satgate token genuine, unexpired and unrevoked, and what can it still spend?"""
    token_text = bearer_token(request.headers.get("Authorization", ""))
    if isinstance(token_text, Denial):
        return _error(400, token_text.error, token_text.message)
    return web.json_response((await request.app[SERVICE].verify(token_text)).to_json())


def _caller(request: web.Request) -> Caller:
    host = strip_port((request.host or "").lower())
    return Caller(method=request.method, path=request.path, host=host, source_ip=request.remote or "")


async def _admin(request: web.Request) -> VerifiedToken:
    credential = bearer_token(request.headers.get("Authorization", ""))
    return await request.app[ADMIN].authenticate(credential, _caller(request), admin=True)


@_denials
async def delegate(request: web.Request) -> web.Response:
    """The holder of a token asks for a narrower child; authenticated by the parent token itself."""
    credential = bearer_token(request.headers.get("Authorization", ""))
    admin = request.app[ADMIN]
    parent = await admin.authenticate(credential, _caller(request), admin=False)
    spec = DelegateRequest.from_json(await _json_body(request))
    assert isinstance(credential, str)  # authenticate() refused anything else
    return web.json_response(await admin.delegate(parent, credential, spec))


@_denials
async def admin_revoke(request: web.Request) -> web.Response:
    caller = await _admin(request)
    doc = await _json_body(request)
    if not isinstance(doc, dict):
        raise ExchangeDenied(400, "bad_request", "body must be a JSON object")
    revocation_id = doc.get("id") or doc.get("token_id") or doc.get("delegation_id")
    if not isinstance(revocation_id, str):
        raise ExchangeDenied(400, "bad_request", "give id (a token_id or delegation_id)")
    reason = doc.get("reason", "")
    return web.json_response(await request.app[ADMIN].revoke(caller, revocation_id, str(reason)))


@_denials
async def admin_delegations(request: web.Request) -> web.Response:
    caller = await _admin(request)
    records = request.app[ADMIN].delegations(
        caller, token_id=request.query.get("token_id"), delegation_id=request.query.get("delegation_id")
    )
    return web.json_response({"delegations": records})


@_denials
async def admin_audit(request: web.Request) -> web.Response:
    caller = await _admin(request)
    records = request.app[ADMIN].audit_records(caller)
    if request.query.get("format", "json") == "csv":
        return web.Response(text=audit_csv(records), content_type="text/csv")
    return web.json_response({"records": records})


@_denials
async def admin_revoke_policy(request: web.Request) -> web.Response:
    caller = await _admin(request)
    doc = await _json_body(request)
    reason = doc.get("reason", "") if isinstance(doc, dict) else ""
    return web.json_response(await request.app[ADMIN].revoke_policy(caller, request.match_info["name"], str(reason)))


def build_services(config: Config, session: aiohttp.ClientSession) -> tuple[MintService, AdminService]:
    mint = config.mint
    attribute_keys = frozenset(config.authz.attributes)
    aws_settings = None
    if mint.aws.server_id:
        aws_settings = aws.AwsSettings(
            sts_endpoint=mint.aws.sts_endpoint,
            server_id_header=mint.aws.server_id_header,
            server_id=mint.aws.server_id,
            max_clock_skew_seconds=mint.aws.max_clock_skew_seconds,
        )
    keyring = KeyringFile(config.keyring, group_readable=config.keyring_group_readable)
    ledger, audit = open_ledger(config.ledger), open_audit_log(config.ledger, mint.audit_log)
    policies, store = PolicyStore(mint.policies, attribute_keys), ControlPlaneStore(mint.state)
    max_ttl = parse_duration(mint.max_ttl)
    service = MintService(
        keyring=keyring,
        ledger=ledger,
        audit=audit,
        policies=policies,
        session=session,
        settings=MintSettings(max_ttl, attribute_keys, aws_settings),
        rate_limiter=RateLimiter(per_minute=mint.rate_limit_per_minute),
        store=store,
        jwks_refetch_seconds=mint.jwks_refetch_seconds,
        refusal_audit_seconds=mint.refusal_audit_seconds,
        tenants=frozenset(config.authz.tenants) if config.authz.tenants else None,
    )
    admin_verifier = TokenVerifier(keyring.current, attribute_keys=attribute_keys, tenants=config.authz.tenants)
    keyring.on_change(admin_verifier.use_keyring)
    admin = AdminService(
        verifier=admin_verifier,
        ledger=ledger,
        audit=audit,
        store=store,
        policies=policies,
        attribute_keys=attribute_keys,
        max_ttl_seconds=max_ttl,
        leeway_seconds=config.authz.leeway_seconds,
    )
    return service, admin


def create_app(config: Config, *, serve_grpc: bool = True) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY_BYTES)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            service, app[ADMIN] = build_services(config, session)
            app[SERVICE] = service
            webhooks = WebhookDispatcher(
                session,
                [
                    WebhookTarget(
                        url=w.url,
                        secret=w.resolved_secret(),
                        format=w.format,
                        events=frozenset(w.events) if w.events is not None else None,
                        max_attempts=w.max_attempts,
                    )
                    for w in config.mint.webhooks
                ],
            )
            webhooks.start()
            webhooks.tail(service.audit)
            app[WEBHOOKS] = webhooks
            watcher = asyncio.create_task(service.watch_policies(config.mint.policy_reload_seconds))
            keyring_watch = asyncio.create_task(service.keyring.watch())
            refusals_audit = asyncio.create_task(service.refusals.run())
            server = None
            if serve_grpc:
                server = grpc.aio.server()
                mint_pb2_grpc.add_MintServicer_to_server(MintGrpc(service, app[ADMIN]), server)
                admin_pb2_grpc.add_AdminServicer_to_server(AdminGrpc(app[ADMIN]), server)
                health = HealthServicer()
                health_pb2_grpc.add_HealthServicer_to_server(health, server)
                if server.add_insecure_port(config.mint.grpc_listen) == 0:
                    raise OSError(f"mint: cannot listen on {config.mint.grpc_listen}")
                await server.start()
                for name in ("", "satgate_api.mint.v1.Mint"):
                    await health.set(name, health_pb2.HealthCheckResponse.SERVING)
            try:
                yield
            finally:
                watcher.cancel()
                keyring_watch.cancel()
                refusals_audit.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                if server is not None:
                    await server.stop(grace=3)
                await webhooks.close()
                await service.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/api/mint/exchange", exchange)
    app.router.add_post("/api/mint/verify", verify)
    app.router.add_post("/api/mint/delegate", delegate)
    app.router.add_post("/api/admin/revoke", admin_revoke)
    app.router.add_get("/api/admin/delegations", admin_delegations)
    app.router.add_get("/api/admin/audit", admin_audit)
    app.router.add_post("/api/admin/policies/{name}/revoke", admin_revoke_policy)
    return app


def check_startup(config: Config) -> None:
    """Refuse to start on bad trust policies, naming the field, before binding any port."""
    PolicyStore(config.mint.policies, frozenset(config.authz.attributes))


def run(config: Config) -> None:
    host, _, port = config.mint.listen.rpartition(":")
    web.run_app(create_app(config), host=host, port=int(port), access_log=None, print=None)
