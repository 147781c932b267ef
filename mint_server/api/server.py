"""The Mint process: HTTP/JSON (aiohttp) and gRPC (grpc.aio) on one event loop and one MintService. The admin
API is on the same listeners, or on its own (`mint.admin_listen`, `mint.admin_grpc_listen`) so a NetworkPolicy
can keep everyone but operators away from it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

import aiohttp
import grpc
import structlog
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from mint_server.admin.registry import TokenAdmin
from mint_server.admin.service import AdminService
from mint_server.api.grpc import AdminGrpc, MintGrpc
from mint_server.api.http import ADMIN, ADMIN_ROUTES, MAX_BODY_BYTES, PUBLIC_ROUTES, SERVICE, WEBHOOKS, error
from mint_server.audit.config import config_loaded
from mint_server.audit.keyring import KeyringAudit
from mint_server.audit.retention import prune_audit_forever
from mint_server.audit.webhooks import WebhookDispatcher, WebhookTarget
from mint_server.console.routes import ADMIN_KEY as CONSOLE_ADMIN
from mint_server.console.routes import ROUTES as CONSOLE_ROUTES
from mint_server.console.routes import SERVICE_KEY as CONSOLE_SERVICE
from mint_server.exchange.rate_limit import RateLimiter
from mint_server.exchange.service import MintService, MintSettings
from mint_server.identity import aws
from mint_server.policies.files import PolicyStore
from mint_server.policies.managed import ManagedPolicies
from mint_server.policies.tenants import SharedIssuer
from satgate.config import Config, ConfigError
from satgate.control_plane.store import ControlPlaneStore
from satgate.control_plane.usage import open_usage_sink
from satgate.keyring import KeyringFile
from satgate.ledger.url import open_ledger
from satgate.listeners import claim
from satgate.timefmt import parse_duration
from satgate.tls import ReloadingContext, TlsError, TlsFiles
from satgate.tokens.verify import TokenVerifier
from satgate.tracing import Tracing
from satgate_api.admin.v1 import admin_pb2_grpc
from satgate_api.grpc_tls import server_credentials
from satgate_api.mint.v1 import mint_pb2_grpc

log = structlog.get_logger("satgate.mint")


def policy_store(config: Config) -> PolicyStore:
    """The trust policies as configured; a bad file or shared issuer raises PolicyError naming it."""
    mint = config.mint
    shared = [SharedIssuer.from_config(index, entry) for index, entry in enumerate(mint.shared_issuers)]
    return PolicyStore(
        mint.policies,
        frozenset(config.authz.attributes),
        mint.default_tenant,
        require_scopes=mint.require_scopes,
        shared_issuers=shared,
    )


async def build_services(config: Config, session: aiohttp.ClientSession) -> tuple[MintService, AdminService]:
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
    store = await ControlPlaneStore.open(config.control_plane)  # refuses a database behind this schema
    keyring = KeyringFile(config.keyring, group_readable=config.keyring_group_readable)
    ledger, audit = open_ledger(config.ledger), config.open_audit_log()
    KeyringAudit(keyring, audit)  # listens on the keyring: a rotation shipped as a file is in this chain too
    policies = policy_store(config)
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
        tracing=(
            Tracing.otlp("satgate-mint", config.tracing.otlp_endpoint, sample_ratio=config.tracing.sample_ratio)
            if config.tracing.otlp_endpoint is not None
            else None
        ),
    )
    admin_verifier = TokenVerifier(keyring.current, attribute_keys=attribute_keys, tenants=config.authz.tenants)
    keyring.on_change(admin_verifier.use_keyring)
    usage = await open_usage_sink(config.control_plane, config.authz.usage.path) if config.authz.usage.enabled else None
    managed = ManagedPolicies(store, policies, audit, attribute_keys, require_scopes=mint.require_scopes)
    service.managed = managed
    managed.budgets = service.budgets
    admin = AdminService(
        verifier=admin_verifier,
        ledger=ledger,
        audit=audit,
        store=store,
        policies=policies,
        attribute_keys=attribute_keys,
        max_ttl_seconds=max_ttl,
        leeway_seconds=config.authz.leeway_seconds,
        refusal_audit_seconds=mint.refusal_audit_seconds,
        managed=managed,
        tokens=TokenAdmin(store=store, ledger=ledger, audit=audit, usage=usage),
    )
    await managed.refresh()
    return service, admin


def _admin_only_on_its_listener(admin_port: int):
    """With `mint.admin_listen` set, /api/admin/* and the console answer only there, and only /healthz besides."""

    @web.middleware
    async def split(request: web.Request, handler):
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        on_admin_listener = sockname is not None and sockname[1] == admin_port
        admin_only = request.path.startswith(("/api/admin/", "/console"))  # the console acts as an admin does
        if request.path != "/healthz" and admin_only != on_admin_listener:
            return error(404, "not_found", f"no {request.path} on this listener")
        return await handler(request)

    return split


def _grpc_server(port_setting: str, address: str, servicers, tls: TlsFiles | None) -> grpc.aio.Server:
    server = grpc.aio.server()
    for add, servicer in servicers:
        add(servicer, server)
    port = server.add_secure_port(address, server_credentials(tls)) if tls else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"{port_setting}: cannot listen on {address}; set {port_setting} to a free address")
    return server


def create_app(config: Config, *, serve_grpc: bool = True) -> web.Application:
    admin_listen = config.mint.admin_listen
    middlewares = [_admin_only_on_its_listener(int(admin_listen.rpartition(":")[2]))] if admin_listen else []
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=middlewares)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            service, app[ADMIN] = await build_services(config, session)
            app[SERVICE] = service
            app[CONSOLE_ADMIN], app[CONSOLE_SERVICE] = app[ADMIN], service
            await service.audit.append(config_loaded(config))  # in the chain; webhooks start after it
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
            await webhooks.tail(service.audit)
            app[WEBHOOKS] = webhooks
            watcher = asyncio.create_task(service.watch_policies(config.mint.policy_reload_seconds))
            keyring_watch = asyncio.create_task(service.keyring.watch())
            refusals_audit = asyncio.create_task(service.refusals.run())
            admin_refusals_audit = asyncio.create_task(app[ADMIN].refusals.run())
            audit_retention = asyncio.create_task(
                prune_audit_forever(service.audit, service.keyring, retention_days=config.mint.audit_retention_days)
            )
            servers = _grpc_servers(config, service, app[ADMIN]) if serve_grpc else []
            for server, _health in servers:
                await server.start()
            for _server, health in servers:
                for name in ("", "satgate_api.mint.v1.Mint", "satgate_api.admin.v1.Admin"):
                    await health.set(name, health_pb2.HealthCheckResponse.SERVING)
            try:
                yield
            finally:
                watcher.cancel()
                keyring_watch.cancel()
                refusals_audit.cancel()
                admin_refusals_audit.cancel()
                with contextlib.suppress(Exception):  # the last interval's admin refusals, if the store takes them
                    await app[ADMIN].refusals.flush()
                audit_retention.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                for server, _health in servers:
                    await server.stop(grace=3)
                await webhooks.close()
                await service.close()
                await app[ADMIN].tokens.close()

    app.cleanup_ctx.append(lifecycle)
    for method, path, handler in PUBLIC_ROUTES + ADMIN_ROUTES + CONSOLE_ROUTES:
        app.router.add_route(method, path, handler)
    return app


def _grpc_servers(
    config: Config, service: MintService, admin: AdminService
) -> list[tuple[grpc.aio.Server, HealthServicer]]:
    mint = config.mint
    tls = mint.tls.files("mint.tls") if mint.tls else None
    public_health, admin_health = HealthServicer(), HealthServicer()
    public = [
        (mint_pb2_grpc.add_MintServicer_to_server, MintGrpc(service, admin)),
        (health_pb2_grpc.add_HealthServicer_to_server, public_health),
    ]
    admin_servicer = (admin_pb2_grpc.add_AdminServicer_to_server, AdminGrpc(admin))
    if not mint.admin_grpc_listen:
        return [(_grpc_server("mint.grpc_listen", mint.grpc_listen, [*public, admin_servicer], tls), public_health)]
    admin_server = _grpc_server(
        "mint.admin_grpc_listen",
        mint.admin_grpc_listen,
        [admin_servicer, (health_pb2_grpc.add_HealthServicer_to_server, admin_health)],
        tls,
    )
    public_server = _grpc_server("mint.grpc_listen", mint.grpc_listen, public, tls)
    return [(public_server, public_health), (admin_server, admin_health)]


def listeners(config: Config) -> dict[str, str]:
    """Every address the Mint listens on, by the setting that names it."""
    mint = config.mint
    named = {
        "mint.listen": mint.listen,
        "mint.grpc_listen": mint.grpc_listen,
        "mint.admin_listen": mint.admin_listen,
        "mint.admin_grpc_listen": mint.admin_grpc_listen,
    }
    return {setting: address for setting, address in named.items() if address}


def check_startup(config: Config) -> None:
    """Refuse to start on bad trust policies or a taken address, naming the field, before binding any port."""
    problems = config.exposed_state_files() + config.missing_webhook_secrets()
    if problems:
        raise ConfigError(problems[0])
    if config.mint.tls is not None:
        try:
            config.mint.tls.files("mint.tls").check()
        except TlsError as exc:
            raise ConfigError(str(exc)) from None
    policy_store(config)
    for setting, address in listeners(config).items():
        claim(setting, address)


async def serve(config: Config) -> None:
    runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False)
    await runner.setup()  # the lifecycle: services, gRPC servers
    tls = ReloadingContext(config.mint.tls.files("mint.tls")) if config.mint.tls else None
    tls_watch = asyncio.create_task(tls.watch()) if tls else None
    try:
        for address in filter(None, (config.mint.listen, config.mint.admin_listen)):
            host, _, port = address.rpartition(":")
            await web.TCPSite(runner, host, int(port), ssl_context=tls.context if tls else None).start()
        log.info(
            "mint_listening",
            **listeners(config),
            tls=tls is not None,
            mtls=bool(config.mint.tls and config.mint.tls.client_ca_file),
            pid=os.getpid(),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("mint_stopping", pid=os.getpid())
    finally:
        if tls_watch is not None:
            tls_watch.cancel()
        await runner.cleanup()


def run(config: Config) -> None:
    asyncio.run(serve(config))
