"""`satgate up` as a person runs it: start, copy the printed curl, run it, Ctrl-C."""

import json
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
import yaml

from satgate_dev.devstack import StackPorts, free_port
from tests.policies import demo_issuer_policy

pytestmark = pytest.mark.e2e


def up_argv(state, ports: StackPorts, metrics_port: int, *extra: str) -> list[str]:
    """`satgate up` on these ports only (never the machine's own 8080, 8082, 8090…)."""
    flags = {
        "--port": ports.envoy,
        "--admin-port": ports.envoy_admin,
        "--authz-port": ports.authz,
        "--mint-port": ports.mint,
        "--upstream-port": ports.upstream,
        "--mint-grpc-port": ports.mint_grpc,
        "--idp-port": ports.idp,
        "--metrics-port": metrics_port,
    }
    return [
        sys.executable,
        "-m",
        "satgate_cli",
        "up",
        "--state-dir",
        str(state),
        *(f"{k}={v}" for k, v in flags.items()),
        *extra,
    ]


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_up_prints_a_curl_that_works(tmp_path, transport):
    ports = StackPorts.free()
    metrics_port = free_port()
    proc = subprocess.Popen(
        up_argv(tmp_path / "state", ports, metrics_port, "--transport", transport),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed = []
    try:
        deadline = time.monotonic() + 60
        curl = None
        while curl is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(printed)
            printed.append(line)
            if line.strip().startswith("curl "):
                curl = line.strip()
        assert curl is not None, "".join(printed)
        while not printed[-1].startswith("logs:") and time.monotonic() < deadline:  # the rest of the banner
            printed.append(proc.stdout.readline())
        argv = shlex.split(curl)
        assert argv[0] == "curl"
        if shutil.which("curl"):
            result = subprocess.run([*argv, "-s", "--noproxy", "*"], capture_output=True, text=True, timeout=30)
            assert result.stdout.startswith("HTTP/1.1 200"), result.stdout
            assert "x-satgate-credits-remaining: 99" in result.stdout
        else:  # same request without curl
            headers = dict([argv[argv.index("-H") + 1].split(": ", 1)])
            assert httpx.get(argv[-1], headers=headers, trust_env=False).status_code == 200
        assert (tmp_path / "state" / "keyring.json").stat().st_mode & 0o077 == 0
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        assert any(metrics_url in line for line in printed), "".join(printed)
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            metrics = response.read().decode()
        allowed = 'satgate_authz_decisions_total{code="200",enforced="true",reason="allow"} 1.0'
        assert allowed in metrics  # the curl above
        # one layout: every state file in --state-dir, and other commands find it there with the same flag
        state = tmp_path / "state"
        assert {"mint.db", "usage.db", "ledger.db", "audit.db", "keyring.json"} <= {p.name for p in state.iterdir()}
        assert not (state / ".satgate").exists()
        for file in state.glob("*.db*"):  # databases and their -wal/-shm: private, like the keyring
            assert file.stat().st_mode & 0o777 == 0o600, (file, oct(file.stat().st_mode))
        token = argv[argv.index("-H") + 1].removeprefix("Authorization: Bearer ")
        inspect = [sys.executable, "-m", "satgate_cli", "token", "inspect", token, "--state-dir", str(state)]
        inspected = json.loads(subprocess.run(inspect, capture_output=True, text=True, timeout=30, cwd=tmp_path).stdout)
        assert (inspected["valid"], inspected["remaining"]) == (True, 99)
        console_at = next(i for i, line in enumerate(printed) if line.startswith("console: "))  # and its sign-in
        console_url, admin = printed[console_at].split()[1], printed[console_at + 2].strip()
        with httpx.Client(trust_env=False, timeout=10) as browser:
            signed = browser.post(f"{console_url}/sign-in", data={"token": admin}, follow_redirects=True)
        assert signed.status_code == 200 and "Overview of demo" in signed.text and "satgate:admin" in signed.text
        jwt = [sys.executable, "-m", "satgate_cli", "demo-jwt", "--sub", "agent-1", "--state-dir", str(state)]
        assert subprocess.run(jwt, capture_output=True, text=True, timeout=30, cwd=tmp_path).stdout.count(".") == 2
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped." in out


def test_up_on_a_taken_port_refuses_before_starting_anything(tmp_path):
    ports = StackPorts.free()
    holder = socket.socket()
    holder.bind(("127.0.0.1", ports.mint))
    holder.listen()  # someone else's server (a first `satgate up`, say) on the Mint's port
    try:
        done = subprocess.run(
            up_argv(tmp_path / "state", ports, free_port()),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert done.returncode != 0
    assert "--mint-port" in done.stderr and "already in use" in done.stderr, done.stderr
    assert "ready." not in done.stdout and "Traceback" not in done.stderr
    assert not list((tmp_path / "state").glob("*.log"))  # nothing was started


def wait_ready(proc) -> list[str]:
    """The banner up to its `logs:` line (the stack is serving then)."""
    printed: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, "".join(printed)
        printed.append(line)
        if line.startswith("logs:"):
            return printed
    raise AssertionError("".join(printed))


def test_up_runs_your_own_policies_and_settings(tmp_path):
    """The seed guide's policies as written (attributes declared for them, tenant from the demo), one of our own
    trusting the demo issuer, and a satgate.yaml of our own laid over the stack's."""
    ports = StackPorts.free()
    policies = tmp_path / "policies"
    shutil.copytree(Path(__file__).parents[1] / "mint" / "seed_policies", policies)
    (policies / "local.yaml").write_text(
        demo_issuer_policy(
            ports.idp, '{budget_credits: 9, scopes: ["api:*"], caveats: ["department = research", "team = agents"]}'
        )
    )
    own = tmp_path / "mine.yaml"
    own.write_text("mint:\n  policies: policies\n  rate_limit_per_minute: 1\nauthz:\n  attributes: [region]\n")
    state = tmp_path / "state"
    proc = subprocess.Popen(
        up_argv(state, ports, free_port(), "--config", str(own)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(proc)
        jwt = [sys.executable, "-m", "satgate_cli", "demo-jwt", "--sub", "agent-1", "--state-dir", str(state)]
        identity = subprocess.run(jwt, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
        exchange = f"http://127.0.0.1:{ports.mint}/api/mint/exchange"
        first = httpx.post(exchange, json={"credentials": identity}, trust_env=False)
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["tenant"], body["policy"], body["budget_credits"]) == ("demo", "local", 9)
        assert "team = agents" in body["caveats"]
        assert httpx.post(exchange, json={"credentials": identity}, trust_env=False).status_code == 429  # mine.yaml
        allowed = httpx.get(
            f"{ports_url(ports)}/v1/items", headers={"Authorization": f"Bearer {body['token']}"}, trust_env=False
        )
        assert allowed.status_code == 200 and allowed.json()["headers"]["x-satgate-attr-team"] == "agents"
        config = yaml.safe_load((state / "satgate.yaml").read_text())
        assert config["authz"]["attributes"] == ["cost_center", "department", "region", "team"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    mint_log = (state / "mint.log").read_text()
    assert "policy_rule_unscoped" in mint_log and "kubernetes-agents" in mint_log  # the seed's rules, named


def ports_url(ports: StackPorts) -> str:
    return f"http://127.0.0.1:{ports.envoy}"
