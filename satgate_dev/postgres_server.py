"""A private PostgreSQL server for tests (and the dev stack when asked): `initdb` into its own directory, `pg_ctl`
on a free loopback port — never the machine's own cluster on 5432. As root, the server runs as the `postgres`
user (PostgreSQL refuses to run as root), so its directory is created where that user can reach it."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from satgate_dev.devstack import LOOPBACK, free_port

USER = "satgate"  # the superuser initdb creates; trust auth on loopback only


def _bindir() -> Path:
    """Debian keeps initdb and pg_ctl out of PATH, in /usr/lib/postgresql/<major>/bin: the newest one there."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (./dev does it as root)")
    return Path(versions[-1]).parent


@dataclass
class PostgresServer:
    port: int = field(default_factory=free_port)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="satgate-pg-")))
    _as_user: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@{LOOPBACK}:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> str:
        return subprocess.run(  # noqa: S603 - PostgreSQL's own binaries
            [*self._as_user, *argv], capture_output=True, text=True, timeout=timeout, check=True
        ).stdout

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        bindir = _bindir()
        self._run(str(bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses={LOOPBACK} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = self.directory / "postgres.log"
        try:
            self._run(str(bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start")
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"PostgreSQL on {self.port} did not start: {log}") from exc
        return self

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._run(
            str(_bindir() / "psql"),
            "-h",
            LOOPBACK,
            "-p",
            str(self.port),
            "-U",
            USER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            sql,
        )

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(  # noqa: S603
                [*self._as_user, str(_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        shutil.rmtree(self.directory, ignore_errors=True)
