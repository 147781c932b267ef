"""Servers as users run them: separate processes, their first log line, their refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from satgate.ledger.initialise import init_ledger_blocking
from satgate_dev.devstack import free_port


def free_address() -> str:
    return f"127.0.0.1:{free_port()}"


def mint_config(directory: Path, keyring_file: Path, **mint_settings: str) -> Path:
    directory.mkdir(exist_ok=True)
    ledger = f"sqlite:///{directory}/ledger.db"
    init_ledger_blocking(ledger)
    config = directory / "satgate.yaml"
    config.write_text(yaml.safe_dump({"keyring": str(keyring_file), "ledger": ledger, "mint": mint_settings}))
    return config


def start_mint(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "satgate_cli", "mint", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_event(proc: subprocess.Popen, event: str, timeout: float = 30) -> dict:
    """The first JSON log line with this event (reading the process's output as it comes)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"exited with {proc.wait()} before {event}: {''.join(seen)}")
        seen.append(line)
        if line.startswith("{") and (record := json.loads(line))["event"] == event:
            return record
    raise AssertionError(f"no {event} within {timeout}s: {''.join(seen)}")


def refused_line(argv: list[str]) -> str:
    """Run a server that must refuse: it exits non-zero and says why in exactly one line, no traceback."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stdout + done.stderr
    output = (done.stdout + done.stderr).strip()
    assert "Traceback" not in output and len(output.splitlines()) == 1, output
    return output


def satgate_ok(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "satgate_cli", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout
