"""Private redis-server instances for tests and the bench: one on a free loopback port (never the machine's own
on 6379), or a small Redis Cluster."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from satgate_dev.devstack import LOOPBACK, free_port


@dataclass
class RedisServer:
    """A private redis-server on a free loopback port (never the machine's shared one), for tests and bench."""

    directory: Path
    port: int = field(default_factory=free_port)
    persistent: bool = False  # AOF with fsync on every write: an acknowledged debit survives kill -9
    fsync: str = "always"  # appendfsync when persistent: always (as shipped), everysec (the bench compares)
    cluster: bool = False
    replica_of: int | None = None  # the primary's port: start as its replica (Sentinel may change it later)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--logfile",
            "redis.log",
            "--protected-mode",
            "yes",
            "--repl-diskless-sync-delay",  # a replica syncs at once, not after 5 s waiting for others
            "0",
        ]
        argv += ["--appendonly", "yes", "--appendfsync", self.fsync] if self.persistent else ["--appendonly", "no"]
        if self.replica_of is not None:
            argv += ["--replicaof", LOOPBACK, str(self.replica_of)]
        if self.cluster:
            argv += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + timeout
        # Ours answering, not merely someone: a port found free can be taken before redis-server binds it, and a
        # PONG from that other server would hand the tests a store they do not own.
        while not (self.ping() and self._answered_by_own_process()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not start: {self.directory / 'redis.log'}")
            time.sleep(0.02)
        return self

    def _answered_by_own_process(self) -> bool:
        assert self.process is not None
        info = subprocess.run(  # noqa: S603 - redis-cli from PATH, like redis-server
            ["redis-cli", "-p", str(self.port), "info", "server"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return f"process_id:{self.process.pid}\r" in info or f"process_id:{self.process.pid}\n" in info

    def ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def cli(self, *args: str) -> str:
        return subprocess.run(  # noqa: S603 - redis-cli from PATH, like redis-server
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) exists and is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bus:
            try:
                bus.bind((LOOPBACK, port + 10000))
            except OSError:
                continue
        return port


def start_redis_cluster(directory: Path, nodes: int = 3) -> list[RedisServer]:
    servers = [
        RedisServer(directory / f"node{i}", port=free_cluster_port(), cluster=True).start() for i in range(nodes)
    ]
    subprocess.run(  # noqa: S603
        [
            "redis-cli",
            "--cluster",
            "create",
            *(f"{LOOPBACK}:{s.port}" for s in servers),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    deadline = time.monotonic() + 20
    while not all("cluster_state:ok" in s.cli("cluster", "info") for s in servers):
        if time.monotonic() > deadline:
            raise RuntimeError("redis cluster did not become ready")
        time.sleep(0.1)
    return servers
