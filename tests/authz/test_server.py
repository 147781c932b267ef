"""The authz server as users run it: a separate process speaking gRPC, with health and workers."""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
import yaml
from click.testing import CliRunner
from envoy.service.auth.v3 import external_auth_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from satgate.ledger.initialise import init_ledger_blocking
from satgate.tokens.mint import mint
from satgate_cli import cli
from satgate_dev.devstack import free_port, grpc_serving

from .conftest import check_request, status_of


def write_config(tmp_path: Path, keyring_file: Path, **authz) -> Path:
    port = free_port()
    config = tmp_path / "satgate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "keyring": str(keyring_file),
                "ledger": f"sqlite:///{tmp_path}/ledger.db",
                "authz": {"listen": f"127.0.0.1:{port}", **authz},
            }
        )
    )
    init_ledger_blocking(f"sqlite:///{tmp_path}/ledger.db")
    return config


def start(config: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "satgate_cli", "authz", "--config", str(config), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_serving(target: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not grpc_serving(target, "envoy.service.auth.v3.Authorization"):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "authz did not become healthy"
        time.sleep(0.05)


def listen_of(config: Path) -> str:
    return yaml.safe_load(config.read_text())["authz"]["listen"]


def test_checks_over_grpc_and_stops_gracefully(tmp_path, keyring, keyring_file):
    config = write_config(tmp_path, keyring_file)
    proc = start(config)
    try:
        wait_serving(listen_of(config), proc)
        t = mint(keyring, "acme", [("budget", "2")]).token
        with grpc.insecure_channel(listen_of(config)) as channel:
            stub = external_auth_pb2_grpc.AuthorizationStub(channel)
            statuses = [status_of(stub.Check(check_request(t), timeout=5)) for _ in range(3)]
        assert statuses == [200, 200, 402]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert events[0] == "authz_listening" and events[-1] == "authz_stopping"
    assert t not in out


def test_workers_share_the_port_and_the_budget(tmp_path, keyring, keyring_file):
    config = write_config(tmp_path, keyring_file, workers=2, decision_log="all")
    proc = start(config)
    try:
        wait_serving(listen_of(config), proc)
        t = mint(keyring, "acme", [("budget", "30")]).token
        statuses = []
        for _ in range(40):  # a fresh connection each time, so SO_REUSEPORT spreads them
            with grpc.insecure_channel(listen_of(config), options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                statuses.append(status_of(external_auth_pb2_grpc.AuthorizationStub(channel).Check(check_request(t))))
        assert statuses.count(200) == 30
        assert statuses.count(402) == 10
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    listening = {line["pid"] for line in lines if line["event"] == "authz_worker_listening"}
    assert [line["event"] for line in lines].count("authz_listening") == 1  # the supervisor's, once all listen
    deciding = {line["pid"] for line in lines if line["event"] == "decision"}
    assert len(listening) == 2
    assert deciding == listening  # both workers answered
    assert proc.returncode == 0


def test_health_turns_serving_only_once_every_worker_listens(tmp_path, keyring_file):
    # More workers than cores: the last ones are still importing when the first already listens.
    config = write_config(tmp_path, keyring_file, workers=4)
    proc = start(config)
    try:
        wait_serving(listen_of(config), proc)
    finally:
        proc.send_signal(signal.SIGTERM)  # a worker still starting would die here without ever listening
        out, _ = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len({line["pid"] for line in lines if line["event"] == "authz_worker_listening"}) == 4
    # The supervisor says so the moment health does: a stop right after serving still finds the line.
    assert [line["event"] for line in lines].count("authz_listening") == 1


def scrape(listen: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_endpoint_sums_every_worker(tmp_path, keyring, keyring_file, workers):
    metrics_listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, keyring_file, workers=workers, metrics_listen=metrics_listen, decision_log="all")
    proc = start(config)
    try:
        wait_serving(listen_of(config), proc)
        t = mint(keyring, "acme", [("budget", "30")]).token
        for _ in range(40):  # a fresh connection each time, so SO_REUSEPORT spreads them over the workers
            with grpc.insecure_channel(listen_of(config), options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                external_auth_pb2_grpc.AuthorizationStub(channel).Check(check_request(t), timeout=5)
        samples = scrape(metrics_listen)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    deciding = {json.loads(line)["pid"] for line in out.splitlines() if '"decision"' in line}
    assert len(deciding) == workers  # so the totals below are sums over every worker
    allowed = frozenset({("code", "200"), ("reason", "allow"), ("enforced", "true")})
    exhausted = frozenset({("code", "402"), ("reason", "budget_exhausted"), ("enforced", "true")})
    assert samples[("satgate_authz_decisions_total", allowed)] == 30
    assert samples[("satgate_authz_decisions_total", exhausted)] == 10
    assert samples[("satgate_authz_credits_debited_total", frozenset({("tenant", "acme")}))] == 30
    assert samples[("satgate_authz_check_seconds_count", frozenset())] == 40


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_port_in_use_refuses_to_start_naming_the_setting(tmp_path, keyring_file, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        config = write_config(tmp_path, keyring_file, workers=workers, metrics_listen=busy)
        result = start_expecting_refusal(config)
    assert f"authz.metrics_listen: {busy} is already in use by another process" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def start_expecting_refusal(config: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "satgate_cli", "authz", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    return result


@pytest.mark.parametrize(
    ("authz", "message"),
    [
        ({"workers": 0}, "authz.workers"),
        ({"default_cost": "cheap"}, "authz.default_cost"),
        ({"routes": [{"settings": {"scope": "bad scope"}}]}, "authz.routes.0.settings"),
        ({"listen": "nowhere"}, "authz.listen"),
        ({"surprise": 1}, "authz.surprise"),
    ],
)
def test_bad_config_refuses_to_start_naming_the_field(tmp_path, keyring_file, authz, message):
    config = write_config(tmp_path, keyring_file)
    doc = yaml.safe_load(config.read_text())
    doc["authz"].update(authz)
    config.write_text(yaml.safe_dump(doc))
    result = start_expecting_refusal(config)
    assert message in result.stderr


def test_world_readable_keyring_refuses_to_start(tmp_path, keyring_file):
    keyring_file.chmod(0o644)
    config = write_config(tmp_path, keyring_file)
    result = start_expecting_refusal(config)
    assert "must be 0600" in result.stderr


def test_health_command_reports_serving_then_not(tmp_path, keyring_file):
    """`satgate health` is what the container health checks run."""
    config = write_config(tmp_path, keyring_file)
    proc = start(config)
    target = listen_of(config)
    try:
        wait_serving(target, proc)
        serving = CliRunner().invoke(cli, ["health", target, "--service", "envoy.service.auth.v3.Authorization"])
        unknown = CliRunner().invoke(cli, ["health", target, "--service", "no.such.Service"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    stopped = CliRunner().invoke(cli, ["health", target])
    assert (serving.exit_code, serving.output.strip()) == (0, f"{target}: serving")
    assert unknown.exit_code == 1
    assert stopped.exit_code == 1 and "not serving" in stopped.output


def health_status(target: str) -> int | None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="envoy.service.auth.v3.Authorization"), timeout=1
            )
            return reply.status
    except grpc.RpcError:
        return None


def wait_for(predicate, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_server_without_its_ledger_is_not_serving_answers_503_and_recovers(tmp_path, keyring, keyring_file):
    config = write_config(tmp_path, keyring_file)
    (tmp_path / "ledger.db").unlink()  # a wrong path, or the file lost: the server must not make a new one
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"ledger.db{suffix}").unlink(missing_ok=True)
    proc = start(config)
    target = listen_of(config)
    not_serving = 2  # grpc.health.v1 NOT_SERVING
    try:
        wait_for(lambda: health_status(target) == not_serving, "authz never reported NOT_SERVING")
        token = mint(keyring, "acme", [("budget", "1")]).token
        with grpc.insecure_channel(target) as channel:
            denied = external_auth_pb2_grpc.AuthorizationStub(channel).Check(check_request(token), timeout=5)
        assert status_of(denied) == 503
        assert json.loads(denied.denied_response.body)["error"] == "authz_unavailable"
        assert not (tmp_path / "ledger.db").exists()
        init = CliRunner().invoke(cli, ["ledger", "init", "--config", str(config)])
        assert init.exit_code == 0, init.output
        wait_for(lambda: grpc_serving(target, "envoy.service.auth.v3.Authorization"), "authz did not recover")
        with grpc.insecure_channel(target) as channel:
            allowed = external_auth_pb2_grpc.AuthorizationStub(channel).Check(check_request(token), timeout=5)
        assert status_of(allowed) == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    lost = next(e for e in events if e["event"] == "ledger_not_ready")
    assert "satgate ledger init" in lost["detail"] and str(tmp_path / "ledger.db") in lost["detail"]
    assert any(e["event"] == "ledger_ready" for e in events)


def test_an_unusable_usage_path_refuses_to_start_naming_the_setting(tmp_path, keyring_file):
    config = write_config(tmp_path, keyring_file, usage={"path": "/etc/passwd/usage.db"}, workers=2)
    result = start_expecting_refusal(config)
    assert "authz.usage.path: cannot open /etc/passwd/usage.db" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_corrupt_ledger_is_not_serving_and_the_log_names_the_file(tmp_path, keyring_file):
    config = write_config(tmp_path, keyring_file)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"ledger.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "ledger.db").write_bytes(bytes(range(256)) * 8)
    proc = start(config)
    try:
        wait_for(lambda: health_status(listen_of(config)) == 2, "a corrupt ledger must report NOT_SERVING")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    lost = next(json.loads(line) for line in out.splitlines() if '"ledger_not_ready"' in line)
    assert str(tmp_path / "ledger.db") in lost["detail"] and "restore it from a backup" in lost["detail"]
    assert "Traceback" not in out


def test_workers_exit_when_their_supervisor_is_killed(tmp_path, keyring_file):
    from satgate.listeners import claim

    config = write_config(tmp_path, keyring_file, workers=2)
    proc = start(config)
    wait_serving(listen_of(config), proc)
    proc.kill()  # -9: no chance to stop its workers itself
    proc.communicate(timeout=10)
    deadline = time.monotonic() + 10
    while True:  # unsupervised workers would keep the port (and its budgets) forever
        try:
            claim("authz.listen", listen_of(config))
            break
        except OSError:
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.1)
