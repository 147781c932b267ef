"""The whole stack on one machine: demo upstream, authz, mint and a real Envoy in front.
`satgate up` runs it for people; the end-to-end tests run it on free loopback ports."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from satgate.config import load_config
from satgate.keyring import load_or_create_keyring
from satgate.ledger.initialise import init_ledger_blocking
from satgate.listeners import claim
from satgate_dev import envoy_config
from satgate_dev.demo_idp import DemoIdp

LOOPBACK = "127.0.0.1"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port free now and never handed out before by this process: the kernel may offer the port it
    just gave to the previous caller, who has not bound it yet (two settings on one port)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


EXAMPLE_POLICIES = Path(__file__).resolve().parent.parent / "examples" / "trust-policies.yaml"
HTTP_ROUTES = Path(__file__).resolve().parent.parent / "examples" / "envoy-http-routes.yaml"
DEMO_ISSUER_IN_EXAMPLE = "http://127.0.0.1:8090"


@dataclass(frozen=True)
class StackPorts:
    envoy: int = 8080
    envoy_admin: int = 9901
    authz: int = 9191
    mint: int = 8081
    upstream: int = 8000
    mint_grpc: int = 8082
    idp: int = 8090

    @classmethod
    def free(cls) -> StackPorts:
        return cls(*(free_port() for _ in range(7)))


@dataclass
class Stack:
    state_dir: Path
    ports: StackPorts = field(default_factory=StackPorts)
    config_overrides: dict = field(default_factory=dict)  # merged into the generated satgate.yaml
    authz_workers: int = 1  # processes sharing one port (SO_REUSEPORT)
    authz_replicas: int = 1  # separate servers on their own ports, all behind Envoy's authz cluster
    transport: str = "grpc"  # or "http": envoy/envoy-http.yaml and the route table that goes with it
    authz_socket: bool = False  # authz on a unix socket in the state dir (Envoy's pipe address), not a port
    envoy_source: Path | None = None  # default: the shipped config of the transport
    policies_source: Path = EXAMPLE_POLICIES  # its demo issuer URL is pointed at this stack's
    # The operator's own trust policies (a file or a directory), used where they are instead of the example:
    # their attribute caveats are declared to authz, and policies without a tenant get the demo's.
    policies_path: Path | None = None
    upstream_argv: list[str] | None = None  # another upstream than the echo server; "{port}" is replaced
    # Envoy → authz over mTLS (envoy/variants/authz-over-mtls.yaml): Envoy's client certificate and key and the CA
    # of the authz server's certificate, {"ca": path, "cert": path, "key": path}; authz.tls is the test's to set.
    authz_tls: dict[str, Path] | None = None
    # Envoy's ext_authz timeout instead of the shipped 500 ms: for tests whose subject is not the timeout but that
    # queue more checks than a loaded 2-core runner answers within it.
    ext_authz_timeout_ms: int | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @functools.cached_property
    def authz_ports(self) -> dict[str, int]:
        """`authz` on the configured port, `authz-1`… on free ones."""
        return {"authz": self.ports.authz, **{f"authz-{i}": free_port() for i in range(1, self.authz_replicas)}}

    @functools.cached_property
    def als_ports(self) -> dict[str, int]:
        """HTTP transport: each authz server's gRPC listener too, for Envoy's access-log stream (refund_on)."""
        if self.transport != "http" or self.authz_socket or self.authz_tls is not None:
            return {}
        return {name: free_port() for name in self.authz_ports}

    @property
    def config_path(self) -> Path:
        return self.state_dir / "satgate.yaml"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.envoy}"

    def write_config(self) -> Path:
        """satgate.yaml, the keyring and demo identity; for a new state dir also a new ledger (`ledger init`)."""
        new_state = not self.config_path.exists()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        authz: dict = {"listen": f"{LOOPBACK}:{self.ports.authz}", "workers": self.authz_workers}
        if self.transport == "http":
            routes = yaml.safe_load(HTTP_ROUTES.read_text())["routes"]
            authz = {"transport": "http", "http_listen": authz.pop("listen"), **authz, "routes": routes}
            if self.als_ports:
                authz.update(transport="both", listen=f"{LOOPBACK}:{self.als_ports['authz']}")
        doc: dict = {
            "state_dir": ".",  # every state file beside this satgate.yaml, those it does not name too
            "keyring": "keyring.json",
            "ledger": "sqlite:///ledger.db",
            "authz": authz,
            "mint": {
                "listen": f"{LOOPBACK}:{self.ports.mint}",
                "grpc_listen": f"{LOOPBACK}:{self.ports.mint_grpc}",
                "policies": "trust-policies.yaml",
                "audit_log": "audit.db",
            },
        }
        if self.policies_path is not None:
            doc["mint"].update(policies=str(self.policies_path.resolve()), default_tenant="demo")
        for section, values in self.config_overrides.items():
            if isinstance(values, dict) and isinstance(doc.get(section), dict):
                doc[section].update(values)
            else:
                doc[section] = values
        if self.policies_path is not None:
            from mint_server.policies.files import attribute_caveat_keys  # noqa: PLC0415 - only for own policies

            declared = set(doc["authz"].get("attributes", []))
            declared |= set(attribute_caveat_keys(self.policies_path, doc["mint"].get("default_tenant")))
            doc["authz"]["attributes"] = sorted(declared)
        self.config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
        load_or_create_keyring(self.state_dir / "keyring.json")
        self._write_demo_identity()
        if new_state:
            init_ledger_blocking(load_config(self.config_path).ledger)
        return self.config_path

    @property
    def issuer(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.idp}"

    @property
    def idp_state(self) -> Path:
        return self.state_dir / "demo-idp.json"

    def _write_demo_identity(self) -> None:
        """The example policies, pointed at this stack's demo issuer, whose key persists across runs."""
        policies = self.policies_source.read_text().replace(DEMO_ISSUER_IN_EXAMPLE, self.issuer)
        (self.state_dir / "trust-policies.yaml").write_text(policies)
        idp = DemoIdp.load(self.idp_state) if self.idp_state.exists() else DemoIdp(issuer=self.issuer)
        idp.issuer = self.issuer
        idp.save(self.idp_state)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.state_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and envoy
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )

    def listeners(self) -> dict[str, int]:
        """Every port this stack will listen on, by the `satgate up` option that sets it."""
        ports = self.ports
        named = {
            "--port (envoy)": ports.envoy,
            "--admin-port (envoy admin)": ports.envoy_admin,
            "--mint-port": ports.mint,
            "--mint-grpc-port": ports.mint_grpc,
            "--upstream-port": ports.upstream,
            "--idp-port": ports.idp,
            **{f"--authz-port ({name})": port for name, port in self.authz_ports.items()},
        }
        metrics = self.config_overrides.get("authz", {}).get("metrics_listen")
        if metrics:
            named["--metrics-port"] = int(metrics.rpartition(":")[2])
        return named

    def claim_ports(self) -> None:
        """Before anything starts: a stack whose ports another one holds would report the other as ready."""
        for option, port in self.listeners().items():
            claim(option, f"{LOOPBACK}:{port}")

    def start(self, timeout: float = 30.0) -> None:
        self.claim_ports()
        self.write_config()
        python = sys.executable
        config = str(self.config_path)
        upstream = self.upstream_argv or [python, "-m", "satgate_cli", "demo-upstream", "--port", "{port}"]
        self._spawn("upstream", [arg.replace("{port}", str(self.ports.upstream)) for arg in upstream])
        for name in self.authz_ports:
            self._spawn_authz(name)
        self._spawn(
            "idp",
            [
                python,
                "-m",
                "satgate_cli",
                "demo-idp",
                "--state-file",
                str(self.idp_state),
                "--port",
                str(self.ports.idp),
            ],
        )
        self._spawn("mint", [python, "-m", "satgate_cli", "mint", "--config", config])
        self.start_envoy()
        try:
            self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise

    def _spawn_authz(self, name: str) -> None:
        listen = "--http-listen" if self.transport == "http" else "--listen"
        address = self.authz_address(name, self.authz_ports[name])
        argv = [sys.executable, "-m", "satgate_cli", "authz", "--config", str(self.config_path), listen, address]
        if name in self.als_ports:
            argv += ["--listen", f"{LOOPBACK}:{self.als_ports[name]}"]
        self._spawn(name, argv)

    def restart_authz(self, name: str = "authz", timeout: float = 30.0) -> None:
        """Stop one authz server (SIGTERM) and start it again on the same addresses, until it is ready."""
        self.stop_process(name)
        self._spawn_authz(name)
        deadline = time.monotonic() + timeout
        while not self._authz_ready(name, self.authz_ports[name]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not ready after a restart:\n{self.log_tail(name)}")
            time.sleep(0.05)

    def start_envoy(self) -> None:
        source = self.envoy_source or envoy_config.SHIPPED_CONFIGS[self.transport]
        clusters: dict[str, envoy_config.Address | list[envoy_config.Address]] = {
            "satgate_authz": [self.authz_address(name, port) for name, port in self.authz_ports.items()],
            "upstream": (LOOPBACK, self.ports.upstream),
        }
        if self.als_ports and "name: satgate_als" in source.read_text():
            clusters["satgate_als"] = [(LOOPBACK, port) for port in self.als_ports.values()]
        rendered = envoy_config.render(
            source=source,
            listen=(LOOPBACK, self.ports.envoy),
            admin=(LOOPBACK, self.ports.envoy_admin),
            clusters=clusters,
        )
        if self.authz_tls is not None:
            envoy_config.use_authz_mtls(rendered, self.authz_tls, http1=self.transport == "http")
        if self.ext_authz_timeout_ms is not None:
            envoy_config.set_ext_authz_timeout(rendered, self.ext_authz_timeout_ms)
        path = envoy_config.write_rendered(self.state_dir / "envoy.yaml", rendered)
        self._spawn(
            "envoy",
            [
                envoy_config.find_envoy(),
                "-c",
                str(path),
                "--use-dynamic-base-id",
                "--log-level",
                "warn",
                "--concurrency",
                "2",
            ],
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        checks: dict[str, Callable[[], bool]] = {
            "upstream": lambda: _port_open(self.ports.upstream),
            **{name: functools.partial(self._authz_ready, name, port) for name, port in self.authz_ports.items()},
            "mint": lambda: http_ok(f"http://{LOOPBACK}:{self.ports.mint}/healthz"),
            "idp": lambda: http_ok(f"{self.issuer}/.well-known/openid-configuration"),
            "envoy": lambda: http_ok(f"http://{LOOPBACK}:{self.ports.envoy_admin}/ready") and self._envoy_sees_authz(),
        }
        pending = dict(checks)
        while pending:
            for name in list(pending):
                proc = self.processes.get(name)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
                if pending[name]():
                    del pending[name]
            if time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}")
            time.sleep(0.05)

    def _envoy_sees_authz(self) -> bool:
        """Envoy health-checks the authz hosts, each second while no traffic flows: one whose first check came
        before it was ready would get no traffic for up to a second. Ready once Envoy calls every one healthy."""
        try:
            clusters = f"http://{LOOPBACK}:{self.ports.envoy_admin}/clusters"
            with urllib.request.urlopen(clusters, timeout=0.5) as response:
                lines = [line for line in response.read().decode().splitlines() if "::health_flags::" in line]
        except (urllib.error.URLError, OSError, ValueError):
            return False
        for name, port in self.authz_ports.items():
            where = self.authz_address(name, port).removeprefix("unix:")
            if not all(line.endswith("::healthy") for line in lines if f"::{where}::" in line):
                return False
        return True

    def authz_address(self, name: str, port: int) -> str:
        """Where an authz server of this stack listens: its port, or its socket in the state dir."""
        return f"unix:{self.state_dir / name}.sock" if self.authz_socket else f"{LOOPBACK}:{port}"

    def _authz_ready(self, name: str, port: int) -> bool:
        address = self.authz_address(name, port)
        if self.authz_tls is not None:
            return _tls_authz_ready(address, self.authz_tls, http=self.transport == "http")
        if self.transport == "http":
            if self.authz_socket:
                return unix_http_status(address.removeprefix("unix:"), "/readyz") == 204
            return http_ok(f"http://{LOOPBACK}:{port}/readyz", status=204)
        return grpc_serving(address)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.state_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        proc = self.processes.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def stop(self) -> None:
        for name in ("envoy", "mint", "idp", *self.authz_ports, "upstream"):
            self.stop_process(name)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.2):
        return True
    return False


def http_ok(url: str, status: int = 200) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:  # noqa: S310 - loopback only
            return response.status == status
    except (urllib.error.URLError, OSError, ValueError):
        return False


def unix_http_status(path: str, target: str) -> int | None:
    """The status of GET `target` over a unix socket (urllib speaks TCP only)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(path)
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            status_line = sock.recv(64).split(b"\r\n", 1)[0].split()
        return int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else None
    except OSError:
        return None


def grpc_serving(target: str, service: str = "") -> bool:
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=0.5
            )
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def _tls_authz_ready(address: str, tls: dict[str, Path], *, http: bool) -> bool:
    """Readiness over mTLS with Envoy's own client certificate (the server's name: satgate-authz)."""
    if http:
        context = ssl.create_default_context(cafile=str(tls["ca"]))
        context.load_cert_chain(tls["cert"], tls["key"])
        context.check_hostname = False  # the certificate names satgate-authz; the CA is what is checked here
        try:
            with urllib.request.urlopen(f"https://{address}/readyz", timeout=0.5, context=context) as response:
                return response.status == 204
        except (urllib.error.URLError, OSError, ValueError):
            return False
    credentials = grpc.ssl_channel_credentials(
        tls["ca"].read_bytes(), private_key=tls["key"].read_bytes(), certificate_chain=tls["cert"].read_bytes()
    )
    options = [("grpc.ssl_target_name_override", "satgate-authz")]
    try:
        with grpc.secure_channel(address, credentials, options=options) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def pretty(doc: object) -> str:
    return json.dumps(doc, indent=2)
