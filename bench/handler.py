"""The check handler in process (no network): µs per check, one at a time and amortised over concurrent checks
(what group commit and Redis pipelines share), on the transport-neutral pipeline and through the gRPC messages."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path

import structlog
from envoy.service.auth.v3.external_auth_pb2 import CheckRequest
from envoy_rows import BENCH_PATH as PATH

from authz_server.check import CheckPipeline, CheckSettings
from authz_server.check_input import CheckInput
from authz_server.metrics import CheckMetrics
from authz_server.transports.grpc import GrpcChecks
from satgate.keyring import Keyring
from satgate.ledger.initialise import init_ledger_blocking
from satgate.ledger.url import open_ledger
from satgate.routes import RouteTable
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier

CONCURRENT = 32  # as many checks in flight as wrk's connections through Envoy


def _headers(token: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {token}",
        "x-request-id": str(uuid.uuid4()),
        "user-agent": "bench",
        "accept": "*/*",
        ":authority": "api.example.com",
    }


def _input(token: str) -> CheckInput:
    return CheckInput("GET", PATH, "api.example.com", _headers(token), "127.0.0.1", {"scope": "api:read", "cost": "1"})


def _grpc_request(token: str) -> CheckRequest:
    request = CheckRequest()
    http = request.attributes.request.http
    http.method, http.path, http.host = "GET", PATH, "api.example.com"
    http.headers.update(_headers(token))
    request.attributes.source.address.socket_address.address = "127.0.0.1"
    request.attributes.context_extensions.update({"scope": "api:read", "cost": "1"})
    return request


def _stats(samples: list[float]) -> dict[str, float]:
    samples.sort()
    return {
        "mean": statistics.fmean(samples),
        "p50": samples[len(samples) // 2],
        "p99": samples[int(len(samples) * 0.99)],
    }


async def handler_microseconds(iterations: int, state: Path, redis_url: str) -> dict[str, dict[str, float]]:
    """An unbudgeted token takes the real path without a write transaction (a revocation read only), so the rows
    separate the debit from everything else. `amortised` rows: batches of CONCURRENT checks, µs per check."""
    keyring = Keyring.generate()
    base = [("expires", "2099-01-01T00:00:00Z"), ("scope", "api:*")]
    structlog.configure(  # decision logs to a file, as a deployment would ship them
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=(state / "decisions.log").open("w")),
        cache_logger_on_first_use=True,  # as satgate.logs configures the servers
    )
    budgeted = [*base, ("budget", str(10**15))]
    windowed = [*budgeted, ("budget_window", f"{10**15}/1d")]  # a lifetime and a daily bucket, one step
    sqlite = f"sqlite:///{state}/handler-{{}}.db"
    cases = {  # label: caveats, decision log, ledger, metrics, gRPC messages, concurrent
        "unbudgeted, log off": (base, "none", sqlite, False, False, False),
        "budgeted, log off": (budgeted, "none", sqlite, False, False, False),
        "budgeted, metrics on": (budgeted, "none", sqlite, True, False, False),
        "budgeted, log on": (budgeted, "all", sqlite, False, False, False),
        "budgeted, grpc msgs": (budgeted, "none", sqlite, False, True, False),
        "budgeted, redis": (budgeted, "none", redis_url, False, False, False),
        "windowed, log off": (windowed, "none", sqlite, False, False, False),
        "windowed, redis": (windowed, "none", redis_url, False, False, False),
        "unbudgeted, amortised": (base, "none", sqlite, False, False, True),
        "budgeted, amortised": (budgeted, "none", sqlite, False, False, True),
        "redis, amortised": (budgeted, "none", redis_url, False, False, True),
        "windowed, amortised": (windowed, "none", sqlite, False, False, True),
        "windowed redis, amortised": (windowed, "none", redis_url, False, False, True),
    }
    results = {}
    for label, (caveats, log_mode, ledger_url, with_metrics, grpc_messages, concurrent) in cases.items():
        token = mint(keyring, "bench", caveats).token
        url = ledger_url.format(len(results))
        init_ledger_blocking(url)
        ledger = open_ledger(url)
        pipeline = CheckPipeline(
            verifier=TokenVerifier(keyring),
            ledger=ledger,
            routes=RouteTable(),
            settings=CheckSettings(decision_log=log_mode),
            metrics=CheckMetrics() if with_metrics else None,
        )
        check = GrpcChecks(pipeline).check if grpc_messages else pipeline.check
        make = _grpc_request if grpc_messages else _input
        requests = [make(token) for _ in range(iterations)]
        for request in requests[:500]:  # warm: token cache, SQLite pages, code paths
            await check(request)  # type: ignore[arg-type]
        samples = []
        if concurrent:
            for start in range(500, iterations - CONCURRENT, CONCURRENT):
                began = time.perf_counter_ns()
                await asyncio.gather(*(check(r) for r in requests[start : start + CONCURRENT]))  # type: ignore[arg-type]
                samples.append((time.perf_counter_ns() - began) / 1000 / CONCURRENT)
        else:
            for request in requests[500:]:
                began = time.perf_counter_ns()
                await check(request)  # type: ignore[arg-type]
                samples.append((time.perf_counter_ns() - began) / 1000)
        await ledger.close()
        results[label] = _stats(samples)
    return results
