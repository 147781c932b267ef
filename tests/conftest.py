from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from hypothesis import settings

from satgate.keyring import Keyring, write_keyring

# No per-example deadline: how long an example takes on a loaded 2-core runner is not what a property test checks
# (hypothesis' default of 200 ms failed a JWT-header property once in a full run); speed lives in bench/.
settings.register_profile("satgate", deadline=None)
settings.load_profile("satgate")


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate("k1")


@pytest.fixture
def keyring_file(tmp_path: Path, keyring: Keyring) -> Path:
    path = tmp_path / "keyring.json"
    write_keyring(path, keyring)
    return path


@pytest.fixture(autouse=True)
def _fresh_logging():
    """Tests that configure structlog point it at their own captured stdout, which is closed afterwards:
    without a reset, later in-process tests would log into a dead sink and take its error paths."""
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture(scope="session")
def postgres_server():
    """One private PostgreSQL per test session (initdb into a temp dir, a free loopback port); each test that
    needs one takes a fresh database of it (`postgres_url`)."""
    from satgate_dev.postgres_server import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    return postgres_server.new_database()
