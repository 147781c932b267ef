"""Port ownership (issue 23): a second server on a taken address refuses in one line naming the setting, the
first keeps answering, and budgets stay exact — real processes on loopback."""

import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
import yaml
from envoy.service.auth.v3 import external_auth_pb2_grpc

from satgate.ledger.initialise import init_ledger_blocking
from satgate.tokens.mint import mint
from satgate_dev.devstack import free_port
from tests.authz.conftest import check_request, status_of
from tests.authz.test_server import start, wait_serving
from tests.servers.conftest import free_address, mint_config, refused_line, start_mint, wait_for_event


def authz_config(directory: Path, keyring_file: Path, listen: str, workers: int) -> Path:
    directory.mkdir()
    ledger = f"sqlite:///{directory}/ledger.db"
    init_ledger_blocking(ledger)
    config = directory / "satgate.yaml"
    config.write_text(
        yaml.safe_dump(
            {"keyring": str(keyring_file), "ledger": ledger, "authz": {"listen": listen, "workers": workers}}
        )
    )
    return config


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_authz_on_a_taken_port_refuses_and_budgets_stay_exact(tmp_path, keyring, keyring_file, workers):
    listen = f"127.0.0.1:{free_port()}"
    first = start(authz_config(tmp_path / "first", keyring_file, listen, workers))
    try:
        wait_serving(listen, first)
        second = authz_config(tmp_path / "second", keyring_file, listen, workers)  # its own, fresh ledger
        line = refused_line([sys.executable, "-m", "satgate_cli", "authz", "--config", str(second)])
        assert "authz.listen" in line and listen in line and "already in use" in line, line
        token = mint(keyring, "acme", [("budget", "5")]).token
        statuses = []
        for _ in range(20):  # a fresh connection each time: a port shared with a stranger would spread them
            with grpc.insecure_channel(listen, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                statuses.append(
                    status_of(external_auth_pb2_grpc.AuthorizationStub(channel).Check(check_request(token)))
                )
        assert statuses.count(200) == 5 and statuses.count(402) == 15, statuses
    finally:
        first.terminate()
        first.communicate(timeout=20)


@pytest.mark.parametrize("taken", ["listen", "grpc_listen", "admin_listen", "admin_grpc_listen"])
def test_a_second_mint_on_a_taken_port_refuses_naming_the_setting(tmp_path, keyring_file, taken):
    addresses = {name: free_address() for name in ("listen", "grpc_listen", "admin_listen", "admin_grpc_listen")}
    first = start_mint(mint_config(tmp_path / "a", keyring_file, **addresses))
    try:
        wait_for_event(first, "mint_listening")
        others = {name: free_address() for name in addresses}
        others[taken] = addresses[taken]
        line = refused_line(
            [
                sys.executable,
                "-m",
                "satgate_cli",
                "mint",
                "--config",
                str(mint_config(tmp_path / "b", keyring_file, **others)),
            ]
        )
        assert f"mint.{taken}" in line and addresses[taken] in line and "already in use" in line, line
        with urllib.request.urlopen(f"http://{addresses['listen']}/healthz", timeout=5) as response:
            assert response.status == 200  # the first still answers
    finally:
        first.terminate()
        first.communicate(timeout=20)


def test_free_ports_are_never_handed_out_twice():
    """The kernel may offer the port it just gave the previous caller, who has not bound it yet: two settings of
    one test then shared a port (a Mint refusing its own config)."""
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)
