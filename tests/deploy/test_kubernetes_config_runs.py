"""The servers started from the ConfigMap's own satgate.yaml and trust policies, as the pods start them: only the
in-cluster addresses are mapped to this machine (files to a temp dir, listeners to free loopback ports). The
keyring is a 0440 file like a Secret volume with fsGroup, and the Redis URL, password included, arrives through
SATGATE_LEDGER like the optional satgate-redis Secret; the control plane is a real PostgreSQL whose DSN arrives as
SATGATE_CONTROL_PLANE like the satgate-control-plane Secret, migrated by the db-upgrade Job's command."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
import yaml
from envoy.service.auth.v3 import external_auth_pb2_grpc

from satgate.keyring import Keyring, write_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import free_port, grpc_serving
from satgate_dev.redis_server import RedisServer
from tests.authz.conftest import check_request, status_of

from .manifests import kubernetes_objects, satgate_configmap, the

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery"


@pytest.fixture
def redis_with_password(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    server.cli("config", "set", "requirepass", PASSWORD)
    yield server
    server.stop()


def pod_config(tmp_path: Path) -> tuple[Path, dict[str, str], Keyring]:
    configmap = satgate_configmap()
    config = yaml.safe_load(configmap["satgate.yaml"])
    keyring = Keyring.generate("k1")
    keyring_path = tmp_path / "keyring" / "keyring.json"
    write_keyring(keyring_path, keyring)
    os.chmod(keyring_path, 0o440)  # what the kubelet makes of defaultMode 0400 with fsGroup
    (tmp_path / "trust-policies.yaml").write_text(configmap["trust-policies.yaml"])
    listens = {
        "authz.listen": config["authz"]["listen"],
        "authz.metrics_listen": config["authz"]["metrics_listen"],
        "mint.listen": config["mint"]["listen"],
        "mint.grpc_listen": config["mint"]["grpc_listen"],
    }
    config["keyring"] = str(keyring_path)
    config["authz"]["usage"]["path"] = str(tmp_path / "usage.db")
    config["mint"]["policies"] = str(tmp_path / "trust-policies.yaml")
    config["mint"]["audit_log"] = str(tmp_path / "audit.db")
    mapped = {}
    for dotted, listen in listens.items():
        assert listen.startswith("0.0.0.0:"), dotted  # reachable from other pods
        section, key = dotted.split(".")
        config[section][key] = mapped[dotted] = f"127.0.0.1:{free_port()}"
    path = tmp_path / "satgate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, mapped, keyring


def test_authz_and_mint_start_from_the_configmap_and_share_the_password_protected_ledger(
    tmp_path, redis_with_password, postgres_url
):
    config, listen, keyring = pod_config(tmp_path)
    env = {
        **os.environ,
        "SATGATE_CONFIG": str(config),
        "SATGATE_LEDGER": f"redis://:{PASSWORD}@127.0.0.1:{redis_with_password.port}/0?timeout_ms=250",
        "SATGATE_CONTROL_PLANE": postgres_url,  # as the satgate-control-plane Secret gives it
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    job = the(kubernetes_objects("ledger-init.yaml"), "Job")["spec"]["template"]["spec"]["containers"][0]
    init = subprocess.run(  # as the ledger-init Job runs it, before the servers
        [sys.executable, "-m", "satgate_cli", *job["args"]], env=env, capture_output=True, text=True
    )
    assert init.returncode == 0 and PASSWORD not in init.stdout + init.stderr, init.stderr
    upgrade = the(kubernetes_objects("db-upgrade.yaml"), "Job")["spec"]["template"]["spec"]["containers"][0]
    migrated = subprocess.run(
        [sys.executable, "-m", "satgate_cli", *upgrade["args"]], env=env, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr
    servers = {
        name: subprocess.Popen(
            [sys.executable, "-m", "satgate_cli", name], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for name in ("authz", "mint")
    }
    try:
        deadline = time.monotonic() + 30
        while not (
            grpc_serving(listen["authz.listen"], "envoy.service.auth.v3.Authorization")
            and grpc_serving(listen["mint.grpc_listen"])
        ):
            for name, proc in servers.items():
                assert proc.poll() is None, f"{name}: {proc.stdout.read().decode()}"
            assert time.monotonic() < deadline, "servers did not become healthy"
            time.sleep(0.1)

        token = mint(keyring, "acme", [("scope", "api:read"), ("budget", "3")]).token
        with grpc.insecure_channel(listen["authz.listen"]) as channel:
            stub = external_auth_pb2_grpc.AuthorizationStub(channel)
            statuses = [status_of(stub.Check(check_request(token, path="/v1/items"), timeout=5)) for _ in range(4)]
            premium = status_of(stub.Check(check_request(token, path="/v1/premium/x"), timeout=5))
        assert statuses == [200, 200, 200, 402]  # the budget lives in the password-protected Redis
        assert premium == 403  # the route table's api:premium
        assert redis_with_password.cli("-a", PASSWORD, "--no-auth-warning", "dbsize").strip() != "0"

        with urllib.request.urlopen(f"http://{listen['mint.listen']}/healthz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://{listen['authz.metrics_listen']}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        allowed = 'satgate_authz_decisions_total{code="200",enforced="true",reason="allow"} 3.0'
        assert allowed in metrics  # summed over 2 workers
    finally:
        for proc in servers.values():
            proc.send_signal(signal.SIGTERM)
        outputs = {name: proc.communicate(timeout=20)[0].decode() for name, proc in servers.items()}
    assert all(proc.returncode == 0 for proc in servers.values()), outputs
    assert PASSWORD not in json.dumps(outputs)  # the ledger URL's password is never logged
