"""State files are private (issue 23): created 0600 (0640 beside a group-readable keyring), and a server refuses
to start on one that others may write, in one line naming the setting and the fix."""

import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from tests.servers.conftest import free_address, refused_line, satgate_ok


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_config(tmp_path: Path, **extra) -> str:
    config = tmp_path / "satgate.yaml"
    doc = {"state_dir": ".", "authz": {"listen": free_address()}, "mint": {"listen": free_address()}, **extra}
    config.write_text(yaml.safe_dump(doc))
    return str(config)


@pytest.mark.parametrize(("group_readable", "expected"), [(False, 0o600), (True, 0o640)])
def test_new_state_files_are_private(tmp_path, group_readable, expected):
    config = write_config(tmp_path, keyring_group_readable=group_readable)
    previous = os.umask(0o022)  # a usual umask (inherited by the commands): files must not come out 0644
    try:
        satgate_ok("keys", "init", "-c", config)
        satgate_ok("ledger", "init", "-c", config)
        satgate_ok("token", "mint", "-c", config, "--tenant", "acme", "--scope", "a:b", "--budget", "1")  # audit.db
    finally:
        os.umask(previous)
    files = sorted(tmp_path.glob("*.db*"))
    assert {f.name for f in files} >= {"ledger.db", "audit.db"}
    assert {f.name: mode(f) for f in files} == {f.name: expected for f in files}


@pytest.mark.parametrize(
    ("server", "file", "setting"), [("authz", "ledger.db", "ledger"), ("mint", "audit.db", "mint.audit_log")]
)
def test_a_server_refuses_a_state_file_others_may_write(tmp_path, server, file, setting):
    config = write_config(tmp_path)
    satgate_ok("keys", "init", "-c", config)
    satgate_ok("ledger", "init", "-c", config)
    satgate_ok("token", "mint", "-c", config, "--tenant", "acme", "--scope", "a:b", "--budget", "1")
    os.chmod(tmp_path / file, 0o666)
    line = refused_line([sys.executable, "-m", "satgate_cli", server, "-c", config])
    path = tmp_path / file
    assert line == f"Error: {setting}: {path} is group- or world-writable (mode 0666); run: chmod go-w {path}"
