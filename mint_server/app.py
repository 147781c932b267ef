"""The Mint process: HTTP/JSON (aiohttp) and gRPC (grpc.aio) on one event loop, one MintService."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from authz_server.credential import bearer_token
from mint_server import aws
from mint_server.grpc_api import MintGrpc
from mint_server.identity import BadRequest
from mint_server.service import ExchangeDenied, MintService, MintSettings, PolicyStore, RateLimiter
from satgate.audit import SqliteAuditLog
from satgate.caveats import Denial
from satgate.config import Config
from satgate.keyring import load_keyring
from satgate.ledger.url import open_ledger
from satgate.timefmt import parse_duration
from satgate_api.mint.v1 import mint_pb2_grpc

SERVICE = web.AppKey("service", MintService)
_MAX_BODY_BYTES = 64 * 1024


def _error(status: int, error: str, message: str) -> web.Response:
    headers = {"Retry-After": "60"} if status == 429 else None
    return web.json_response({"error": error, "message": message}, status=status, headers=headers)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[SERVICE].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def exchange(request: web.Request) -> web.Response:
    """`{"credentials": "<JWT>"}` or `Authorization: Bearer <JWT>`; AWS: `{"provider": "aws", "iam_request": {…}}`."""
    service = request.app[SERVICE]
    doc: object = {}
    if request.can_read_body:
        try:
            doc = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "bad_request", "body must be JSON")
    if not isinstance(doc, dict):
        return _error(400, "bad_request", "body must be a JSON object")
    try:
        if doc.get("provider") == "aws":
            result = await service.exchange_aws(aws.IamRequest.from_json(doc.get("iam_request")))
        else:
            credentials = doc.get("credentials")
            if credentials is None:
                header = bearer_token(request.headers.get("Authorization", ""))
                credentials = None if isinstance(header, Denial) else header
            if not isinstance(credentials, str) or not credentials:
                return _error(400, "bad_request", "give credentials (a JWT) or provider=aws with iam_request")
            result = await service.exchange_jwt(credentials)
    except BadRequest as exc:
        return _error(400, "bad_request", str(exc))
    except ExchangeDenied as denied:
        return _error(denied.status, denied.error, denied.message)
    return web.json_response(result.to_json())


async def verify(request: web.Request) -> web.Response:
    """Is this satgate token genuine, unexpired and unrevoked, and what can it still spend?"""
    token_text = bearer_token(request.headers.get("Authorization", ""))
    if isinstance(token_text, Denial):
        return _error(400, token_text.error, token_text.message)
    try:
        result = await request.app[SERVICE].verify(token_text)
    except ExchangeDenied as denied:
        return _error(denied.status, denied.error, denied.message)
    return web.json_response(result.to_json())


def build_service(config: Config, session: aiohttp.ClientSession) -> MintService:
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
    return MintService(
        keyring=load_keyring(config.keyring),
        ledger=open_ledger(config.ledger),
        audit=SqliteAuditLog(mint.audit_log),
        policies=PolicyStore(mint.policies, attribute_keys),
        session=session,
        settings=MintSettings(parse_duration(mint.max_ttl), attribute_keys, aws_settings),
        rate_limiter=RateLimiter(per_minute=mint.rate_limit_per_minute),
        jwks_refetch_seconds=mint.jwks_refetch_seconds,
    )


def create_app(config: Config, *, serve_grpc: bool = True) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY_BYTES)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            service = app[SERVICE] = build_service(config, session)
            watcher = asyncio.create_task(service.watch_policies(config.mint.policy_reload_seconds))
            server = None
            if serve_grpc:
                server = grpc.aio.server()
                mint_pb2_grpc.add_MintServicer_to_server(MintGrpc(service), server)
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
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                if server is not None:
                    await server.stop(grace=3)
                await service.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/api/mint/exchange", exchange)
    app.router.add_post("/api/mint/verify", verify)
    return app


def check_startup(config: Config) -> None:
    """Refuse to start on bad trust policies, naming the field, before binding any port."""
    PolicyStore(config.mint.policies, frozenset(config.authz.attributes))


def run(config: Config) -> None:
    host, _, port = config.mint.listen.rpartition(":")
    web.run_app(create_app(config), host=host, port=int(port), access_log=None, print=None)
