"""One state layout (issue 23): every relative path of satgate.yaml is relative to its directory, every state
file it does not name lives in `state_dir`, and `--state-dir` means the same for every command."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from satgate.config import load_config


def satgate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "satgate_cli", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return done


def test_relative_paths_are_the_config_files_and_the_rest_is_in_state_dir(tmp_path):
    config = tmp_path / "etc" / "satgate.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump({"keyring": "keys/k.json", "mint": {"policies": "p.yaml"}}))
    loaded = load_config(config)
    etc, state = config.parent, config.parent / ".satgate"
    assert (loaded.keyring, loaded.mint.policies) == (etc / "keys/k.json", etc / "p.yaml")
    assert (loaded.control_plane, loaded.mint.audit_log, loaded.authz.usage.path) == (
        f"sqlite:///{state / 'mint.db'}",
        state / "audit.db",
        state / "usage.db",
    )
    assert loaded.ledger == f"sqlite:///{state / 'ledger.db'}"
    config.write_text(yaml.safe_dump({"state_dir": "/var/lib/sg", "mint": {"audit_log": "audit/a.db"}}))
    loaded = load_config(config)
    assert (loaded.keyring, loaded.control_plane, loaded.mint.audit_log) == (
        Path("/var/lib/sg/keyring.json"),
        "sqlite:////var/lib/sg/mint.db",
        etc / "audit/a.db",  # named by the file: relative to the file
    )
    other = load_config(config, state_dir=tmp_path / "other")
    assert other.control_plane == f"sqlite:///{tmp_path / 'other' / 'mint.db'}"


def test_every_command_resolves_paths_against_the_config_not_the_working_directory(tmp_path):
    home = tmp_path / "deploy"
    home.mkdir()
    (home / "satgate.yaml").write_text(yaml.safe_dump({"state_dir": "state"}))
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    config = str(home / "satgate.yaml")
    satgate("keys", "init", "-c", config, cwd=elsewhere)
    satgate("ledger", "init", "-c", config, cwd=elsewhere)
    token = satgate("token", "mint", "-c", config, "--tenant", "acme", "--scope", "a:b", "--budget", "2", cwd=elsewhere)
    inspected = json.loads(satgate("token", "inspect", "-c", config, token.stdout.strip(), cwd=tmp_path).stdout)
    assert inspected["valid"] and inspected["remaining"] == 2
    assert sorted(p.name for p in (home / "state").iterdir()) >= ["audit.db", "keyring.json", "ledger.db"]
    assert not any(elsewhere.iterdir()) and not (home / ".satgate").exists()


def test_state_dir_means_the_same_for_every_command(tmp_path):
    state = tmp_path / "stack"
    satgate("keys", "init", "--state-dir", str(state), cwd=tmp_path)
    satgate("ledger", "init", "--state-dir", str(state), cwd=tmp_path)
    minted = satgate("token", "mint", "--state-dir", str(state), "--tenant", "acme", "--scope", "a:b", cwd=tmp_path)
    env_run = subprocess.run(
        [sys.executable, "-m", "satgate_cli", "token", "inspect", minted.stdout.strip()],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "SATGATE_STATE_DIR": str(state)},
    )
    assert json.loads(env_run.stdout)["valid"] is True
    # mint.db: the control plane, whose token registry records what `token mint` issued
    assert sorted(p.name for p in state.iterdir()) == ["audit.db", "keyring.json", "ledger.db", "mint.db"]
    assert not (tmp_path / ".satgate").exists()
