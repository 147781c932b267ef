import pytest

from satgate_dev.redis_server import RedisServer, start_redis_cluster
from tests.ledger.audit_stores import KINDS, opened
from tests.ledgers import fresh_ledger


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    servers = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
async def ledger(request, tmp_path):
    """Every ledger backend must pass the same conformance suite."""
    if request.param == "sqlite":
        store = fresh_ledger(f"sqlite:///{tmp_path}/ledger.db")
    elif request.param == "redis":
        server = request.getfixturevalue("redis_server")
        server.cli("flushall")  # our private instance
        store = fresh_ledger(server.url)
    else:
        nodes = request.getfixturevalue("redis_cluster")
        for node in nodes:
            node.cli("flushall")
        store = fresh_ledger(f"redis+cluster://127.0.0.1:{nodes[0].port}")
    yield store
    await store.close()


@pytest.fixture(params=KINDS)
async def audit_log(request, tmp_path):
    new_writer, url = await opened(request.param, request, tmp_path)
    log = new_writer()
    yield request.param, log, url
    await log.close()
