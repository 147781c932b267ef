"""The authz cluster over a unix socket (Envoy's pipe address), on both transports, through real Envoy: the same
decisions as over TCP, the socket file gone with its server, and a second server refused on a live socket."""

import subprocess
import sys

import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import Stack, StackPorts

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def socket_stack(tmp_path_factory, transport):
    with Stack(tmp_path_factory.mktemp("uds"), StackPorts.free(), transport=transport, authz_socket=True) as stack:
        yield stack


def test_checks_over_the_socket_decide_as_over_tcp(socket_stack):
    keyring = load_keyring(socket_stack.state_dir / "keyring.json")
    token = mint(keyring, "demo", [("scope", "api:*"), ("budget", "2")]).token
    with httpx.Client(base_url=socket_stack.url, trust_env=False) as http:
        statuses = [http.get("/v1/items", headers={"Authorization": f"Bearer {token}"}).status_code for _ in range(3)]
        assert statuses == [200, 200, 402]
        assert http.get("/v1/items").status_code == 401
        unlimited = mint(keyring, "demo", [("scope", "api:*")]).token
        echoed = http.get("/v1/items", headers={"Authorization": f"Bearer {unlimited}"})
        assert echoed.json()["headers"]["x-satgate-tenant"] == "demo"
    assert (socket_stack.state_dir / "authz.sock").is_socket()


def test_a_second_server_on_a_live_socket_is_refused(socket_stack):
    flag = "--http-listen" if socket_stack.transport == "http" else "--listen"
    address = f"unix:{socket_stack.state_dir / 'authz.sock'}"
    second = subprocess.run(
        [sys.executable, "-m", "satgate_cli", "authz", "--config", str(socket_stack.config_path), flag, address],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode != 0
    assert "is already in use by another process" in second.stderr and "Traceback" not in second.stderr
