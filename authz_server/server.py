"""The authz server process: the check pipeline behind its transports (transports/grpc.py: ext_authz over grpc.aio)
plus grpc.health.v1; N worker processes share the
port through SO_REUSEPORT, each with its own ledger connection (SQLite WAL is multi-process safe)."""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from envoy.service.accesslog.v3 import als_pb2_grpc
from envoy.service.auth.v3 import external_auth_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from authz_server.audit_events import BudgetExhaustedEvents
from authz_server.check import CheckPipeline, CheckSettings
from authz_server.delivery import DeliveryRefunds
from authz_server.metrics import CheckMetrics, MultiProcessMetrics, serve_single_process
from authz_server.transports.access_log import AccessLogService
from authz_server.transports.grpc import AuthorizationService
from authz_server.transports.http import HttpAuthorization, HttpListener
from authz_server.usage_sink import open_usage_sink
from satgate.config import Config
from satgate.control_plane.url import ControlPlaneError, sqlite_file
from satgate.keyring import KeyringFile
from satgate.ledger import LedgerUnavailable
from satgate.ledger.url import open_ledger
from satgate.listeners import claim, private_sockets, release
from satgate.logs import configure_logging
from satgate.mcp import PricingTable
from satgate.sqlite_db import use_group_readable_state
from satgate.tls import TlsError
from satgate.tokens.verify import TokenVerifier
from satgate.tracing import Tracing
from satgate.usage import UsageRecorder, UsageSink, UsageStore
from satgate_api.grpc_tls import server_credentials

log = structlog.get_logger("satgate.authz")
AUTHZ_SERVICE = "envoy.service.auth.v3.Authorization"
_MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # MCP bodies arrive inside the CheckRequest (Envoy bounds them first)


@dataclass(frozen=True)
class WorkerReadiness:
    """Shared by the supervisor's workers: health turns SERVING only once every worker listens, so whoever
    waits for SERVING (Envoy's health check, a test, a rollout) can reach every worker, not just the first."""

    workers: int
    listening: Any  # multiprocessing.Value("i"): workers that have listened, restarted ones included
    all_listening: Any  # multiprocessing.Event

    def listened(self) -> None:
        with self.listening.get_lock():
            self.listening.value += 1
            if self.listening.value >= self.workers:
                self.all_listening.set()

    async def wait(self, stop: asyncio.Event) -> None:
        while not self.all_listening.is_set() and not stop.is_set():
            await asyncio.sleep(0.01)


def _claim_listeners(config: Config) -> None:
    for setting, address in config.authz.served_listeners().items():
        claim(setting, address)
    if config.authz.metrics_listen:
        claim("authz.metrics_listen", config.authz.metrics_listen)


def _listening_fields(config: Config) -> dict[str, Any]:
    transport = config.authz.transport
    return {
        "listen": config.authz.listen if transport != "http" else None,
        "http_listen": config.authz.http_listen if transport != "grpc" else None,
        "transport": transport,
        "tls": config.authz.tls is not None,
        "mtls": bool(config.authz.tls and config.authz.tls.client_ca_file),
        "workers": config.authz.workers,
        "metrics_listen": config.authz.metrics_listen,
        "pid": os.getpid(),
    }


def build_pipeline(
    config: Config, keyring: KeyringFile, metrics: CheckMetrics | None = None, usage_sink: UsageSink | None = None
) -> tuple[CheckPipeline, DeliveryRefunds]:
    """Call inside the event loop that will serve: the usage recorder starts its flush task."""
    authz = config.authz
    verifier = TokenVerifier(
        keyring.current,
        attribute_keys=authz.attributes,
        tenants=authz.tenants,
        cache_size=authz.token_cache_size,
    )
    keyring.on_change(verifier.use_keyring)
    ledger = open_ledger(config.ledger)
    audit = config.open_audit_log()
    exhausted = BudgetExhaustedEvents(audit, ledger)
    exhausted.start()
    usage = None
    if usage_sink is not None:
        usage = UsageRecorder(usage_sink, retention_days=authz.usage.retention_days)
        usage.start()
    tracing = None
    if config.tracing.otlp_endpoint is not None:
        tracing = Tracing.otlp("satgate-authz", config.tracing.otlp_endpoint, sample_ratio=config.tracing.sample_ratio)
    delivery = DeliveryRefunds(
        ledger,
        lambda: keyring.current,
        audit=audit,
        usage=usage,
        thresholds=authz.threshold_permille(),
        on_crossed=exhausted.crossed_by,
    )
    pipeline = CheckPipeline(
        keyring=lambda: keyring.current,
        tracing=tracing,
        metrics=metrics,
        usage=usage,
        on_budget_exhausted=exhausted,
        verifier=verifier,
        ledger=ledger,
        routes=authz.route_table(),
        settings=CheckSettings(
            leeway_seconds=authz.leeway_seconds,
            default_cost=authz.default_cost,
            attribute_headers=tuple(authz.attributes),
            decision_log=authz.decision_log,
            mode=authz.mode,
            observe_debit=authz.observe_debit,
            thresholds=authz.threshold_permille(),
            pricing={
                name: PricingTable(tools=t.tools, methods=t.methods, default=t.default)
                for name, t in authz.pricing.items()
            },
        ),
    )
    return pipeline, delivery


async def serve(
    config: Config,
    *,
    on_ready: Callable[[int], None] | None = None,
    readiness: WorkerReadiness | None = None,
) -> None:
    shared_port = config.authz.workers > 1  # the supervisor claimed it; its workers share it, nobody else
    if not shared_port:
        _claim_listeners(config)
    keyring = KeyringFile(config.keyring, group_readable=config.keyring_group_readable)
    metrics = CheckMetrics() if config.authz.metrics_listen else None
    pipeline, delivery = build_pipeline(config, keyring, metrics, await open_usage_sink(config))
    metrics_server = None
    if metrics is not None and config.authz.metrics_listen and config.authz.workers == 1:
        metrics_server = serve_single_process(metrics, config.authz.metrics_listen)  # else the supervisor's
    keyring_watch = asyncio.create_task(keyring.watch())  # rotation and retirement without a restart
    ledger_state = LedgerState()
    health = HealthServicer()
    server, port, http_listener = await _start_transports(
        config, pipeline, health, ledger_state, shared_port, delivery=delivery
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if readiness is None:
        log.info("authz_listening", **_listening_fields(config))
    else:
        log.info("authz_worker_listening", pid=os.getpid())
        readiness.listened()
        await readiness.wait(stop)
    ledger_watch = asyncio.create_task(follow_ledger(pipeline, health, ledger_state))
    if on_ready is not None:
        on_ready(port)
    await stop.wait()
    log.info("authz_stopping", pid=os.getpid())
    ledger_watch.cancel()
    ledger_state.serving = False  # /readyz turns 503 as grpc.health turns NOT_SERVING
    await health.enter_graceful_shutdown()
    if server is not None:
        await server.stop(grace=5)
    if http_listener is not None:
        await http_listener.stop()
    if not shared_port:
        for address in config.authz.served_listeners().values():
            release(address)  # a unix socket file goes with its server (never one it did not serve)
    keyring_watch.cancel()
    await pipeline.close()
    if metrics_server is not None:
        metrics_server.shutdown()


async def _start_transports(
    config: Config,
    pipeline: CheckPipeline,
    health: HealthServicer,
    state: LedgerState,
    shared_port: bool,
    *,
    delivery: DeliveryRefunds,
) -> tuple[grpc.aio.Server | None, int, HttpListener | None]:
    """The gRPC server (with grpc.health and Envoy's access-log service, for refund_on) and/or the HTTP listener,
    both around the one pipeline."""
    transport = config.authz.transport
    server, port, http_listener = None, 0, None
    if transport in ("grpc", "both"):
        server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", int(shared_port)),
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ]
        )
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(AuthorizationService(pipeline), server)
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        als_pb2_grpc.add_AccessLogServiceServicer_to_server(AccessLogService(delivery), server)
        tls = config.authz.tls
        if tls is not None:  # never a unix: listener (refused at load)
            port = server.add_secure_port(config.authz.listen, server_credentials(tls.files("authz.tls")))
        else:
            with private_sockets(config.authz.listen, int(config.authz.socket_mode, 8)):
                port = server.add_insecure_port(config.authz.listen)
        if port == 0:
            raise OSError(f"authz.listen: cannot listen on {config.authz.listen}; set authz.listen to a free address")
        await server.start()
    if transport in ("http", "both"):
        app = HttpAuthorization(pipeline, ready=lambda: state.serving)
        tls_files = config.authz.tls.files("authz.tls") if config.authz.tls else None
        with private_sockets(config.authz.http_listen, int(config.authz.socket_mode, 8)):
            http_listener = HttpListener(app, config.authz.http_listen, shared_port=shared_port, tls=tls_files)
        await http_listener.start()
    return server, port, http_listener


@dataclass
class LedgerState:
    """What readiness reports on every transport: the ledger reachable and carrying its marker."""

    serving: bool = False


LEDGER_PROBE_SECONDS = 1.0


async def follow_ledger(pipeline: CheckPipeline, health: HealthServicer, state: LedgerState | None = None) -> None:
    """grpc.health says SERVING only while the ledger answers and carries its marker (SPEC v2: Readiness), so
    Envoy's health checks and Kubernetes' probes take a replica without its ledger out of rotation."""
    serving: bool | None = None
    while True:
        try:
            await asyncio.wait_for(pipeline.probe(), LEDGER_PROBE_SECONDS)
            ok, detail = True, ""
        except (LedgerUnavailable, TimeoutError) as exc:
            ok, detail = False, str(exc) or "the ledger did not answer in time"
        if ok != serving:
            status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
            for service in ("", AUTHZ_SERVICE):
                await health.set(service, status)
            if state is not None:
                state.serving = ok
            if ok:
                log.info("ledger_ready", serving=True)
            else:
                log.error("ledger_not_ready", serving=False, detail=detail)
            serving = ok
        await asyncio.sleep(LEDGER_PROBE_SECONDS)


def _die_with_supervisor() -> None:
    """A worker whose supervisor was killed (-9, OOM) must not keep serving its port unsupervised."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the line above
        sys.exit(0)


def _run(main: Coroutine[Any, Any, None], config: Config) -> None:
    """uvloop under the HTTP transport alone (uvicorn's fast path); grpc.aio keeps asyncio's own loop."""
    if config.authz.transport == "http":
        import uvloop  # noqa: PLC0415

        uvloop.run(main)
    else:
        asyncio.run(main)


def _worker_main(config: Config, readiness: WorkerReadiness) -> None:
    _die_with_supervisor()
    use_group_readable_state(config.keyring_group_readable)
    configure_logging(config.log_level, component="authz")
    _run(serve(config, readiness=readiness), config)


def check_startup(config: Config) -> None:
    """What would otherwise fail in every worker, as one line naming the setting and the fix."""
    exposed = config.exposed_state_files()
    if exposed:
        raise OSError(exposed[0])
    if config.authz.tls is not None:
        try:
            config.authz.tls.files("authz.tls").check()
        except TlsError as exc:
            raise OSError(str(exc)) from None
    if sqlite_file(config.control_plane) is None:
        try:  # the audit chain (and usage) go to the shared control plane: it must be at this SatGate's schema
            asyncio.run(_check_schema(config.control_plane))
        except ControlPlaneError as exc:
            raise OSError(str(exc)) from None
    if config.authz.usage.enabled and sqlite_file(config.control_plane) is not None:
        path = config.authz.usage.path
        try:
            UsageStore(path).close_now()
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise OSError(
                f"authz.usage.path: cannot open {path} ({reason}); point it at a writable file in an existing "
                "directory, or set authz.usage.enabled: false"
            ) from None


async def _check_schema(url: str) -> None:
    from satgate.control_plane.store import open_engine  # noqa: PLC0415 - SQLAlchemy only when used

    await (await open_engine(url, upgrade_embedded=False)).dispose()  # checked, never migrated by authz


def run(config: Config) -> None:
    """Serve in this process, or supervise `authz.workers` processes (restarting any that die)."""
    configure_logging(config.log_level, component="authz")
    check_startup(config)
    if config.authz.workers == 1:
        _run(serve(config), config)
        return
    _claim_listeners(config)  # before any worker joins the port's SO_REUSEPORT group
    ctx = multiprocessing.get_context("spawn")  # gRPC does not survive fork
    metrics = MultiProcessMetrics(config.authz.metrics_listen) if config.authz.metrics_listen else None
    readiness = WorkerReadiness(config.authz.workers, ctx.Value("i", 0), ctx.Event())
    workers = [
        ctx.Process(target=_worker_main, args=(config, readiness), daemon=True) for _ in range(config.authz.workers)
    ]
    for worker in workers:
        worker.start()
    stopping = False
    announced = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)  # type: ignore[arg-type]

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while True:
        # Announced as soon as every worker listens (health turns SERVING at that moment too), and always
        # before a stop that follows it: whoever saw the server serve also finds the line.
        if not announced and readiness.all_listening.is_set():
            log.info("authz_listening", **_listening_fields(config))
            announced = True
        if stopping and all(not w.is_alive() for w in workers):
            if metrics is not None:
                metrics.close()
            return
        alive = [w.sentinel for w in workers if w.is_alive()]
        multiprocessing.connection.wait(alive, timeout=0.5 if announced else 0.02)
        for index, worker in enumerate(workers):
            if worker.exitcode is not None and not stopping:
                log.error("authz_worker_died", pid=worker.pid, exitcode=worker.exitcode)
                if metrics is not None and worker.pid is not None:
                    metrics.worker_died(worker.pid)
                time.sleep(0.5)
                workers[index] = ctx.Process(target=_worker_main, args=(config, readiness), daemon=True)
                workers[index].start()
