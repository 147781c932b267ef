"""The Mint process: one `mint_listening` line naming every address, and the admin API fenced onto its own
listeners when `mint.admin_listen` / `mint.admin_grpc_listen` are set (issue 23)."""

import subprocess
import sys
import urllib.error
import urllib.request

import grpc
import pytest

from satgate_api.admin.v1 import admin_pb2, admin_pb2_grpc
from satgate_api.mint.v1 import mint_pb2, mint_pb2_grpc
from tests.servers.conftest import free_address, mint_config, start_mint, wait_for_event


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def grpc_code(target: str, call) -> grpc.StatusCode:
    with grpc.insecure_channel(target) as channel:
        try:
            call(channel)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def list_delegations(channel) -> None:
    admin_pb2_grpc.AdminStub(channel).ListDelegations(admin_pb2.ListDelegationsRequest(), timeout=5)


def verify(channel) -> None:
    mint_pb2_grpc.MintStub(channel).Verify(mint_pb2.VerifyRequest(token="junk"), timeout=5)


@pytest.fixture
def fenced_mint(tmp_path, keyring_file):
    addresses = {name: free_address() for name in ("listen", "grpc_listen", "admin_listen", "admin_grpc_listen")}
    proc = start_mint(mint_config(tmp_path, keyring_file, **addresses))
    try:
        yield addresses, wait_for_event(proc, "mint_listening")
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_the_listening_line_names_every_address(fenced_mint):
    addresses, listening = fenced_mint
    assert {f"mint.{name}": address for name, address in addresses.items()}.items() <= listening.items()
    assert listening["tls"] is False and listening["pid"] > 0


def test_the_admin_api_answers_only_on_its_own_listeners(fenced_mint):
    addresses, _ = fenced_mint
    public, admin = f"http://{addresses['listen']}", f"http://{addresses['admin_listen']}"
    assert http_status(f"{public}/api/admin/audit") == 404
    assert http_status(f"{admin}/api/admin/audit") == 401  # there, and asking for an admin token
    assert http_status(f"{admin}/api/mint/verify") == 404
    assert http_status(f"{public}/console/sign-in") == 404  # the console acts as an admin: only there too
    assert http_status(f"{admin}/console/sign-in") == 200
    assert http_status(f"{public}/healthz") == http_status(f"{admin}/healthz") == 200
    assert grpc_code(addresses["grpc_listen"], list_delegations) == grpc.StatusCode.UNIMPLEMENTED
    assert grpc_code(addresses["admin_grpc_listen"], list_delegations) == grpc.StatusCode.UNAUTHENTICATED
    assert grpc_code(addresses["admin_grpc_listen"], verify) == grpc.StatusCode.UNIMPLEMENTED
    assert grpc_code(addresses["grpc_listen"], verify) == grpc.StatusCode.OK  # answered (as not valid)


def test_without_admin_listeners_the_admin_api_is_beside_the_exchange(tmp_path, keyring_file):
    addresses = {"listen": free_address(), "grpc_listen": free_address()}
    proc = start_mint(mint_config(tmp_path, keyring_file, **addresses))
    try:
        listening = wait_for_event(proc, "mint_listening")
        assert "mint.admin_listen" not in listening
        assert http_status(f"http://{addresses['listen']}/api/admin/audit") == 401
        assert grpc_code(addresses["grpc_listen"], list_delegations) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_one_address_for_two_listeners_is_a_config_error(tmp_path, keyring_file):
    same = free_address()
    config = mint_config(tmp_path, keyring_file, listen=same, admin_listen=same)
    done = subprocess.run(
        [sys.executable, "-m", "satgate_cli", "mint", "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"mint.admin_listen: {same} is also mint.listen" in done.stderr, done.stderr
