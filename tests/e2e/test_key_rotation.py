"""Rotating and retiring keys on a running stack: no restart, new tokens work, retired ones stop."""

import json
import time

import httpx
import pytest
from click.testing import CliRunner

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier
from satgate_cli import cli
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import Stack, StackPorts

pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_rotate_then_retire_without_restarting(tmp_path):
    with Stack(tmp_path / "stack", StackPorts.free()) as stack, httpx.Client(trust_env=False, timeout=10) as http:
        config = str(stack.config_path)
        old = mint(load_keyring(stack.state_dir / "keyring.json"), "acme", [("scope", "api:*")]).token

        rotated = json.loads(CliRunner().invoke(cli, ["keys", "rotate", "--config", config]).output)
        assert rotated == {"active_kid": "k2", "kids": ["k1", "k2"]}
        new = mint(load_keyring(stack.state_dir / "keyring.json"), "acme", [("scope", "api:*")]).token
        assert TokenVerifier(load_keyring(stack.state_dir / "keyring.json")).verify(new).identifier.kid == "k2"

        def status(token: str) -> int:
            return http.get(f"{stack.url}/v1/items", headers={"authorization": f"Bearer {token}"}).status_code

        assert wait_for(lambda: status(new) == 200), "authz did not pick up the new key"
        assert status(old) == 200  # old kids keep verifying until retired

        jwt = DemoIdp.load(stack.idp_state).token("agent-5", "satgate")

        def exchanged_kid() -> str:
            token = http.post(f"http://127.0.0.1:{stack.ports.mint}/api/mint/exchange", json={"credentials": jwt})
            return (
                TokenVerifier(load_keyring(stack.state_dir / "keyring.json"))
                .verify(token.json()["token"])
                .identifier.kid
            )

        assert wait_for(lambda: exchanged_kid() == "k2"), "the Mint did not start issuing with the new key"

        refused = CliRunner().invoke(cli, ["keys", "retire", "--config", config, "k2"])
        assert refused.exit_code != 0 and "is active" in refused.output
        CliRunner().invoke(cli, ["keys", "retire", "--config", config, "k1"])
        assert wait_for(lambda: status(old) == 401), "authz kept accepting a retired key"
        assert http.get(f"{stack.url}/v1/items", headers={"authorization": f"Bearer {old}"}).json()["error"] == (
            "unknown_key"
        )
        assert status(new) == 200

        result = CliRunner().invoke(cli, ["audit", "export", "--config", config])
        rotations = [json.loads(line) for line in result.output.splitlines() if '"key_rotation"' in line]
        assert [r["details"] for r in rotations] == [
            {"active_kid": "k2", "previous_kid": "k1"},
            {"retired_kid": "k1", "active_kid": "k2"},
        ]


def test_a_keyring_rotated_elsewhere_and_shipped_is_audited_in_the_deployments_chain(tmp_path):
    """The Kubernetes flow: rotate on an operator's machine, ship the file (a Secret update); the cluster's own
    chain records what its servers now trust."""
    import shutil

    with Stack(tmp_path / "stack", StackPorts.free()) as stack:
        laptop = tmp_path / "laptop"
        laptop.mkdir()
        shutil.copy2(stack.state_dir / "keyring.json", laptop / "keyring.json")
        assert CliRunner().invoke(cli, ["keys", "rotate", "--state-dir", str(laptop)]).exit_code == 0
        staged = stack.state_dir / "keyring.json.new"
        shutil.copy2(laptop / "keyring.json", staged)
        staged.replace(stack.state_dir / "keyring.json")  # as the kubelet swaps a Secret volume's file

        def loaded() -> list[dict]:
            exported = CliRunner().invoke(cli, ["audit", "export", "--config", str(stack.config_path)]).stdout
            return [r for r in map(json.loads, exported.splitlines()) if r["type"] == "keyring_loaded"]

        assert wait_for(lambda: len(loaded()) == 1), "the Mint did not audit the keyring it loaded"
        (record,) = loaded()
        assert record["actor"] == "mint"
        assert record["details"] == {"active_kid": "k2", "previous_active_kid": "k1", "added": ["k2"], "retired": []}
        exported = CliRunner().invoke(cli, ["audit", "verify", "--config", str(stack.config_path)]).stdout
        assert json.loads(exported)["ok"] is True
