"""A private Redis primary, its replica and a Sentinel watching them, on free loopback ports: the ledger's failover
under test and in the bench. Every wait here is for a state the servers report, never a sleep."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from satgate_dev.devstack import LOOPBACK, free_port
from satgate_dev.redis_server import RedisServer

SERVICE = "satgate"
DOWN_AFTER_MS = 500  # Sentinel calls the primary down after this long without a reply


@dataclass
class Sentinel:
    directory: Path
    primary_port: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> Sentinel:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"  # Sentinel rewrites its file as it learns: one of its own
        config.write_text(
            f"port {self.port}\nbind {LOOPBACK}\ndir {self.directory}\nlogfile sentinel.log\n"
            f"sentinel monitor {SERVICE} {LOOPBACK} {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        argv = ["redis-sentinel", str(config)]  # Debian's, from PATH like redis-server
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        return self

    def cli(self, *args: str) -> str:
        argv = ["redis-cli", "-p", str(self.port), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout  # noqa: S603

    def primary(self) -> int | None:
        """The primary's port, once Sentinel names it to clients as healthy (None: none, or a failover is on)."""
        fields = self.cli("sentinel", "master", SERVICE).split("\n")
        state = dict(zip(fields[0::2], fields[1::2], strict=False))
        if state.get("flags") != "master" or not state.get("port", "").isdigit():
            return None
        return int(state["port"])

    def healthy_replicas(self) -> int:
        reply = self.cli("sentinel", "replicas", SERVICE).split("\n")
        flags = [reply[i + 1] for i, line in enumerate(reply[:-1]) if line == "flags"]
        return sum(1 for f in flags if "down" not in f and "disconnected" not in f)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class SentinelGroup:
    """primary + replica (AOF, appendfsync always, as shipped) + one Sentinel with quorum 1."""

    directory: Path
    primary: RedisServer = field(init=False)
    replica: RedisServer = field(init=False)
    sentinel: Sentinel = field(init=False)

    def __post_init__(self) -> None:
        self.primary = RedisServer(self.directory / "a", persistent=True)
        self.replica = RedisServer(self.directory / "b", persistent=True, replica_of=self.primary.port)
        self.sentinel = Sentinel(self.directory / "sentinel", self.primary.port)

    def url(self, options: str = "") -> str:
        return f"redis+sentinel://{LOOPBACK}:{self.sentinel.port}/{SERVICE}/0{options}"

    def start(self, timeout: float = 20.0) -> SentinelGroup:
        self.primary.start()
        self.replica.start()
        self.sentinel.start()
        self.wait_until(lambda: self.sentinel.primary() == self.primary.port and self.in_sync(), timeout)
        return self

    def in_sync(self) -> bool:
        """The primary has a replica online and Sentinel knows it is healthy (so it could promote it)."""
        current = self.server(self.sentinel.primary())
        return (
            current is not None
            and "state=online" in current.cli("info", "replication")
            and self.sentinel.healthy_replicas() >= 1
        )

    def server(self, port: int | None) -> RedisServer | None:
        return next((s for s in (self.primary, self.replica) if s.port == port), None)

    def kill_primary(self, timeout: float = 30.0) -> tuple[RedisServer, float]:
        """SIGKILL the primary; returns it (to restart) once Sentinel has promoted the replica, and the seconds
        with no primary to write to."""
        old = self.server(self.sentinel.primary())
        assert old is not None, "no primary to kill"
        killed = time.monotonic()
        old.kill()
        self.wait_until(lambda: self.sentinel.primary() not in (None, old.port), timeout)
        new = self.server(self.sentinel.primary())
        assert new is not None
        self.wait_until(lambda: "role:master" in new.cli("info", "replication"), timeout)
        return old, time.monotonic() - killed

    def rejoin(self, old: RedisServer, timeout: float = 30.0) -> None:
        """Restart the old primary from its AOF; Sentinel turns it into the new primary's replica."""
        old.start()
        self.wait_until(self.in_sync, timeout)

    @staticmethod
    def wait_until(ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError("redis sentinel group: timed out waiting for its state")
            time.sleep(0.05)

    def stop(self) -> None:
        self.sentinel.stop()
        for server in (self.primary, self.replica):
            server.kill()  # not SIGTERM: a primary's shutdown waits up to 10 s for a replica already gone
