"""Redis specifics beyond the conformance suite: cluster placement, one round trip, failures, persistence."""

import asyncio
import signal
import socket
import threading
import time

import pytest
import redis

from satgate.config import ConfigError, load_config
from satgate.ledger import Bucket, DebitRequest, LedgerUnavailable, Outcome
from satgate.ledger.marker import redis_marker_key_for_tenant
from satgate.ledger.redis_keys import bucket_key, revoked_key
from satgate.ledger.url import LedgerUrlError, open_ledger, redis_settings, validate_ledger_url
from satgate_dev.devstack import free_port
from satgate_dev.redis_server import RedisServer
from tests.ledgers import fresh_ledger


def debit(tenant="acme", bucket="b" * 32, limit=100, cost=1, key=None, ids=("t" * 32,)) -> DebitRequest:
    return DebitRequest(tenant, ids, (Bucket(bucket, limit),), cost, key)


async def test_tenant_keys_land_on_the_node_that_owns_the_tenant_slot(redis_cluster):
    for node in redis_cluster:
        node.cli("flushall")
    ledger = fresh_ledger(f"redis+cluster://127.0.0.1:{redis_cluster[0].port}")
    tenants = [f"tenant-{i}" for i in range(12)]
    for tenant in tenants:
        assert (await ledger.debit(debit(tenant=tenant, key=f"fp:{tenant}"))).outcome is Outcome.DEBITED
        await ledger.revoke(tenant, "r" * 32)
    await ledger.close()
    owners = set()
    for tenant in tenants:
        slot = int(redis_cluster[0].cli("cluster", "keyslot", f"{{{tenant}}}"))
        holding = [n for n in redis_cluster if n.cli("--scan", "--pattern", f"sg:{{{tenant}}}:*").split()]
        assert len(holding) == 1, tenant
        node = holding[0]
        assert sorted(node.cli("--scan", "--pattern", f"sg:{{{tenant}}}:*").split()) == sorted(  # + the slot's marker
            [
                bucket_key(tenant, "b" * 32),
                revoked_key(tenant),
                *node.cli("--scan", "--pattern", f"sg:{{{tenant}}}:i:*").split(),
            ]
        )
        assert node.cli("exists", redis_marker_key_for_tenant(tenant)).strip() == "1"
        # bucket, revocations, the debit's record, and the slot's ledger marker
        assert int(node.cli("cluster", "countkeysinslot", str(slot))) == 4
        owners.add(node.port)
    assert len(owners) > 1  # the tenants really are spread over the cluster


def client_commands(server: RedisServer, until: threading.Event, seen: list[str]) -> None:
    """Every command a client sends, from MONITOR; commands run inside scripts are marked 'lua' and skipped."""
    with redis.Redis(port=server.port).monitor() as monitor:
        while not until.is_set():
            command = monitor.next_command()
            if command["client_type"] != "lua" and not command["command"].lower().startswith("ping"):
                seen.append(command["command"].split()[0].lower())


async def test_one_round_trip_per_check(redis_server):
    ledger = fresh_ledger(redis_server.url)
    await ledger.debit(debit(key="warm"))  # loads the script
    done, seen = threading.Event(), []
    watcher = threading.Thread(target=client_commands, args=(redis_server, done, seen), daemon=True)
    watcher.start()
    await asyncio.sleep(0.2)
    for i in range(25):
        await ledger.debit(debit(key=f"k{i}", limit=10**6))
    await asyncio.sleep(0.2)
    done.set()
    redis_server.cli("ping")  # wake the monitor so it sees `done`
    watcher.join(timeout=5)
    await ledger.close()
    assert seen == ["evalsha"] * 25


def ledger_connections(server) -> int:
    """Clients connected to the server, without the redis-cli asking."""
    return len(server.cli("client", "list").strip().splitlines()) - 1


async def test_concurrent_checks_share_one_pipeline(redis_server):
    redis_server.cli("flushall")  # our private instance: no record or bucket left by other tests
    ledger = fresh_ledger(redis_server.url)
    await ledger.debit(debit(key="p-warm", bucket="p" * 32, limit=10**6))
    assert ledger_connections(redis_server) == 1
    results = await asyncio.gather(*(ledger.debit(debit(key=f"p{i}", bucket="p" * 32, limit=10**6)) for i in range(64)))
    assert sorted(r.remaining for r in results) == list(range(10**6 - 65, 10**6 - 1))
    assert ledger_connections(redis_server) == 1  # one call per check would have opened a connection each
    await ledger.close()


async def test_a_caller_gone_while_its_pipeline_was_in_flight_is_refunded(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        ledger = fresh_ledger(server.url + "?timeout_ms=2000")
        await ledger.debit(debit(key="warm", bucket="g" * 32, limit=10))
        server.process.send_signal(signal.SIGSTOP)
        try:
            checks = [
                asyncio.ensure_future(ledger.debit(debit(key=f"g{i}", bucket="g" * 32, limit=10))) for i in range(3)
            ]
            await asyncio.sleep(0.1)  # all three sent in one pipeline, Redis not answering yet
            checks[1].cancel()  # Envoy gave up on that one
        finally:
            server.process.send_signal(signal.SIGCONT)
        kept = await asyncio.gather(checks[0], checks[2])
        assert [r.remaining for r in kept] == [8, 6]  # the cancelled one ran between them
        with pytest.raises(asyncio.CancelledError):
            await checks[1]
        await asyncio.sleep(0.3)  # its refund lands
        assert await ledger.remaining("acme", (Bucket("g" * 32, 10),)) == 7
        await ledger.close()
    finally:
        server.stop()


async def test_script_is_reloaded_after_noscript(redis_server):
    ledger = fresh_ledger(redis_server.url)
    await ledger.debit(debit(bucket="n" * 32))
    redis_server.cli("script", "flush")
    result = await ledger.debit(debit(bucket="n" * 32))
    assert (result.outcome, result.remaining) == (Outcome.DEBITED, 98)
    await ledger.close()


async def test_nothing_listening_fails_closed_fast():
    ledger = open_ledger(f"redis://127.0.0.1:{free_port()}/0?timeout_ms=200")
    started = time.monotonic()
    with pytest.raises(LedgerUnavailable):
        await ledger.debit(debit())
    assert time.monotonic() - started < 2
    await ledger.close()


async def test_a_server_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # hold the connection, never reply
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    ledger = open_ledger(f"redis://127.0.0.1:{listener.getsockname()[1]}/0?timeout_ms=200")
    started = time.monotonic()
    with pytest.raises(LedgerUnavailable):
        await ledger.debit(debit())
    assert time.monotonic() - started < 2
    stop.set()
    thread.join()
    listener.close()
    await ledger.close()


async def test_kill_minus_nine_and_restart_keeps_every_acknowledged_debit(tmp_path):
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    ledger = fresh_ledger(server.url)
    acknowledged = 0
    for i in range(200):
        if (await ledger.debit(debit(limit=10**6, key=f"k{i}"))).outcome is Outcome.DEBITED:
            acknowledged += 1
    server.kill()
    with pytest.raises(LedgerUnavailable):
        await ledger.debit(debit(limit=10**6))
    server.start()
    for _ in range(50):  # the pool reconnects by itself
        try:
            remaining = await ledger.remaining("acme", (Bucket("b" * 32, 10**6),))
            break
        except LedgerUnavailable:
            await asyncio.sleep(0.05)
    assert remaining == 10**6 - acknowledged
    assert (await ledger.debit(debit(limit=10**6, key="k0"))).replayed  # idempotency records survived too
    await ledger.close()
    server.stop()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6380/0",
        "rediss://cache.internal:6380/2",
        "redis+cluster://10.0.0.1:7000",
        "redis://:secret@127.0.0.1:6380/0?timeout_ms=100&max_connections=8",
        "sqlite:////var/lib/satgate/ledger.db",
        "redis+sentinel://sentinel-0:26379,sentinel-1:26379,[::1]:26379/satgate/0",
        "redis+sentinel://:secret@10.0.0.5:26379/satgate?wait_replicas=2",
        "redis://127.0.0.1:6380/0?wait_replicas=1",
    ],
)
def test_good_urls(url):
    assert validate_ledger_url(url) == url


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis://", "names no host"),
        ("redis://127.0.0.1:99999/0", "invalid port"),
        ("redis://127.0.0.1:6379/0?timeout_ms=0", "timeout_ms"),
        ("redis://127.0.0.1:6379/0?pool=9", "unknown option"),
        ("memcached://127.0.0.1", "unsupported URL"),
        ("postgres://db/ledger", "unsupported URL"),
        ("redis+sentinel://sentinel-0:26379/", "must name Sentinel's service"),
        ("redis+sentinel://sentinel-0:26379/satgate/zero", "must name Sentinel's service"),
        ("redis+sentinel://sentinel-0,sentinel-1:26379/satgate", "each Sentinel must be host:port"),
        ("redis+sentinel://sentinel-0:26379/satgate?wait_replicas=-1", "wait_replicas must be a whole number"),
        ("redis+cluster://10.0.0.1:7000?wait_replicas=1", "not supported on Redis Cluster"),
    ],
)
def test_bad_urls_name_the_problem(url, fragment):
    with pytest.raises(LedgerUrlError, match=fragment):
        validate_ledger_url(url)


def test_wait_replicas_is_on_behind_sentinel_unless_turned_off():
    assert redis_settings("redis+sentinel://s:26379/satgate").wait_replicas == 1
    assert redis_settings("redis+sentinel://s:26379/satgate?wait_replicas=0").wait_replicas == 0
    assert redis_settings("redis://127.0.0.1:6380/0").wait_replicas == 0  # one Redis: no replica to wait for
    sentinel = redis_settings("redis+sentinel://:pw@a:26379,b:26380/satgate/3")
    assert (sentinel.sentinels, sentinel.service, sentinel.password, sentinel.db) == (
        (("a", 26379), ("b", 26380)),
        "satgate",
        "pw",
        3,
    )


def test_bad_ledger_url_refuses_to_load_config(tmp_path):
    path = tmp_path / "satgate.yaml"
    path.write_text("ledger: redis://127.0.0.1:notaport/0\n")
    with pytest.raises(ConfigError, match="ledger"):
        load_config(path)


def test_ledger_url_from_the_environment_replaces_the_files(tmp_path, monkeypatch):
    """In Kubernetes the Redis URL, password included, comes from a Secret through SATGATE_LEDGER."""
    path = tmp_path / "satgate.yaml"
    path.write_text("ledger: sqlite:///ledger.db\n")
    monkeypatch.setenv("SATGATE_LEDGER", "redis://:s3cret@redis.satgate.svc:6379/0?timeout_ms=200")
    assert load_config(path).ledger == "redis://:s3cret@redis.satgate.svc:6379/0?timeout_ms=200"
    assert load_config(None).ledger.startswith("redis://:s3cret@")
    monkeypatch.setenv("SATGATE_LEDGER", "redis://:s3cret@redis.satgate.svc:6379/0?pool=9")
    with pytest.raises(ConfigError, match=r"ledger \(from SATGATE_LEDGER\): .*unknown option") as refused:
        load_config(path)
    assert "s3cret" not in str(refused.value)
    monkeypatch.delenv("SATGATE_LEDGER")
    assert load_config(path).ledger.startswith("sqlite:///")


def test_a_bad_sentinel_url_from_the_environment_never_shows_its_password(monkeypatch):
    monkeypatch.setenv("SATGATE_LEDGER", "redis+sentinel://:s3cret@sentinel-0,sentinel-1:26379/satgate")
    with pytest.raises(ConfigError, match="each Sentinel must be host:port") as refused:
        load_config(None)
    assert "s3cret" not in str(refused.value)
