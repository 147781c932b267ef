"""Prometheus metrics for the check pipeline, and their /metrics endpoint.

With `authz.workers > 1` every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode) and the supervisor serves their sum, so one scrape sees the whole server."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, multiprocess, start_http_server

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A check costs tens of microseconds to a few milliseconds; a ledger timeout shows up in the top buckets.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class CheckMetrics:
    """Decisions by HTTP status and reason, check latency, credits debited per tenant, ledger failures."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.decisions = Counter(
            "satgate_authz_decisions",
            "Check decisions by the status decided and the reason (allow, or the error code); enforced=false: a route"
            " in observe mode, where Envoy was told to allow whatever was decided",
            ["code", "reason", "enforced"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "satgate_authz_check_seconds",
            "Time to decide one Check, from request to response",
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.credits = Counter(
            "satgate_authz_credits_debited",
            "Credits debited from budgets, by tenant",
            ["tenant"],
            registry=self.registry,
        )
        self.ledger_errors = Counter(
            "satgate_authz_ledger_errors",
            "Checks answered 503 because the ledger was unreachable or timed out",
            registry=self.registry,
        )
        # labels() takes a lock and builds a tuple per call; the label sets are few, so keep the children.
        self._decision_children: dict[tuple[int, str, bool], Any] = {}
        self._credit_children: dict[str, Any] = {}

    def decided(
        self,
        status: int,
        reason: str | None,
        seconds: float,
        tenant: str | None,
        charged: int,
        *,
        enforced: bool = True,
    ) -> None:
        key = (status, reason or "allow", enforced)
        child = self._decision_children.get(key)
        if child is None:
            labels = (str(status), key[1], "true" if enforced else "false")
            child = self._decision_children[key] = self.decisions.labels(*labels)
        child.inc()
        self.latency.observe(seconds)
        if charged and tenant is not None:
            credits = self._credit_children.get(tenant)
            if credits is None:
                credits = self._credit_children[tenant] = self.credits.labels(tenant)
            credits.inc(charged)


def _http_server(listen: str, registry: CollectorRegistry) -> Any:
    host, _, port = listen.rpartition(":")
    try:
        server, _thread = start_http_server(int(port), addr=host.strip("[]"), registry=registry)
    except OSError as exc:
        raise OSError(f"authz.metrics_listen: cannot listen on {listen} ({exc.strerror})") from None
    return server


def serve_single_process(metrics: CheckMetrics, listen: str) -> Any:
    """/metrics for a one-process server: its own metrics plus process CPU/memory. Returns the HTTP server."""
    ProcessCollector(registry=metrics.registry)
    return _http_server(listen, metrics.registry)


class MultiProcessMetrics:
    """The supervisor's side: a fresh directory the workers write into, and /metrics summing them."""

    def __init__(self, listen: str) -> None:
        inherited = os.environ.get(MULTIPROC_ENV)
        self._owned = inherited is None
        self.directory = inherited or tempfile.mkdtemp(prefix="satgate-authz-metrics-")
        if not self._owned:  # values left by an earlier run would be summed in
            for name in os.listdir(self.directory):
                if name.endswith(".db"):
                    os.unlink(os.path.join(self.directory, name))
        os.environ[MULTIPROC_ENV] = self.directory  # inherited by the spawned workers
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.directory)
        try:
            self._server = _http_server(listen, registry)
        except OSError:
            self._remove_directory()
            raise

    def worker_died(self, pid: int) -> None:
        multiprocess.mark_process_dead(pid, path=self.directory)

    def close(self) -> None:
        self._server.shutdown()
        self._remove_directory()

    def _remove_directory(self) -> None:
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)
