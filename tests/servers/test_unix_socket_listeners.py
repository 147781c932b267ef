"""authz.listen / http_listen as unix:/path: the file is claimed like a port, stale ones are replaced, it goes
with its server, and what cannot work is refused in one line."""

import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest
import yaml

from satgate.config import ConfigError, load_config
from satgate_dev.devstack import grpc_serving
from tests.authz.test_server import start, write_config


def serve(tmp_path, keyring_file, address: str) -> tuple[subprocess.Popen, str]:
    config = write_config(tmp_path, keyring_file, listen=address)
    proc = start(config)
    for _ in range(200):
        if grpc_serving(address):
            return proc, str(config)
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    raise AssertionError("authz did not serve on its socket")


def test_the_socket_goes_with_its_server_and_a_stale_one_is_replaced(tmp_path, keyring_file):
    path = tmp_path / "authz.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # a crash leaves the file behind: nothing listens on it
    stale.close()
    proc, _ = serve(tmp_path, keyring_file, f"unix:{path}")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert not path.exists()


def test_a_file_that_is_not_a_socket_is_refused_not_removed(tmp_path, keyring_file):
    path = tmp_path / "authz.sock"
    path.write_text("someone's data")
    config = write_config(tmp_path, keyring_file, listen=f"unix:{path}")
    done = subprocess.run(
        [sys.executable, "-m", "satgate_cli", "authz", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0 and "exists and is not a socket" in done.stderr and "Traceback" not in done.stderr
    assert path.read_text() == "someone's data"


@pytest.mark.parametrize(
    ("authz", "expected"),
    [
        ({"listen": "unix:relative.sock"}, "needs an absolute path"),
        ({"listen": "unix:/" + "x" * 120}, "at most 107 bytes"),
        ({"listen": "unix:/run/a.sock", "workers": 2}, "served by one process"),
        ({"transport": "http", "http_listen": "unix:/run/a.sock", "workers": 2}, "served by one process"),
    ],
)
def test_unix_listeners_that_cannot_work_are_refused_at_load(tmp_path, keyring_file, authz, expected):
    config = write_config(tmp_path, keyring_file, **authz)
    with pytest.raises(ConfigError, match=expected):
        load_config(config)


def test_a_tcp_listener_with_workers_and_a_unix_one_unused_is_fine(tmp_path, keyring_file):
    config = write_config(tmp_path, keyring_file, workers=2, http_listen="unix:/run/unused.sock")
    assert load_config(config).authz.workers == 2  # grpc transport: http_listen is not served


def test_a_socket_the_server_does_not_serve_is_left_alone(tmp_path, keyring_file):
    """transport grpc leaves http_listen unserved: a stop must not remove whatever file that setting names."""
    other = tmp_path / "someone-elses.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(other))
    listener.listen()
    try:
        config = write_config(tmp_path, keyring_file, http_listen=f"unix:{other}")
        proc = start(config)
        listen = yaml.safe_load(config.read_text())["authz"]["listen"]
        for _ in range(200):
            if grpc_serving(listen):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert other.exists()
    finally:
        listener.close()


def test_the_socket_is_created_group_only_whatever_the_umask(tmp_path, keyring_file):
    """Under umask 0 a plain bind makes the socket 0777: anyone on the host could ask for checks. It is 0660 (or
    authz.socket_mode) from the moment it exists."""
    path = tmp_path / "authz.sock"
    config = write_config(tmp_path, keyring_file, listen=f"unix:{path}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "satgate_cli", "authz", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: os.umask(0),  # noqa: PLW1509 - the child's own umask, set before it runs
    )
    try:
        for _ in range(200):
            if grpc_serving(f"unix:{path}"):
                break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)


@pytest.mark.parametrize(
    "authz",
    [
        {"listen": "unix:/run/a.sock"},
        {"transport": "http", "http_listen": "unix:/run/a.sock"},
    ],
)
def test_tls_on_a_unix_listener_is_refused_at_load(tmp_path, keyring_file, authz):
    tls = {"cert_file": str(tmp_path / "c.pem"), "key_file": str(tmp_path / "k.pem")}
    config = write_config(tmp_path, keyring_file, tls=tls, **authz)
    with pytest.raises(ConfigError, match=r"authz\.tls") as refused:
        load_config(config)
    (problem,) = str(refused.value).splitlines()[1:]  # one problem line under the file's, as every config error
    assert "authz.tls" in problem and "socket_mode" in problem
