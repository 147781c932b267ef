import asyncio

import pytest

from satgate.control_plane.engine import create_engine
from satgate.control_plane.migrate import upgrade
from satgate.control_plane.store import ControlPlaneStore


async def upgraded(url: str) -> str:
    """What `satgate db upgrade` does, for a PostgreSQL database the tests just created."""
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def control_plane_url(request, tmp_path) -> str:
    """Every control-plane store must pass the same conformance suite."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/control-plane.db"
    return asyncio.run(upgraded(request.getfixturevalue("postgres_url")))


@pytest.fixture
async def store(control_plane_url):
    opened = await ControlPlaneStore.open(control_plane_url)
    yield opened
    await opened.close()
