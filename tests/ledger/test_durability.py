"""Nothing acknowledged is lost, twenty times over: the store (or the process holding it) is killed with
SIGKILL under load, again and again, and after each restart the credits spent are exactly what was acknowledged
— on Redis restarted from its AOF (appendfsync always, as shipped) with every in-flight debit's fate settled, and
on SQLite with the debiting process killed (at most the one debit committed between its ack and the kill)."""

import asyncio
import random
import secrets
import time

from satgate.ledger import Bucket, DebitRequest, LedgerUnavailable, Outcome
from satgate.ledger.initialise import init_ledger_blocking
from satgate.ledger.url import open_ledger
from satgate_dev.redis_server import RedisServer
from tests.ledgers import fresh_ledger

from .test_sqlite_processes import BUCKET, spawn

KILLS = 20
LIMIT = 10**9


def test_sqlite_twenty_kills_of_the_debiting_process(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    init_ledger_blocking(url)
    acked, rng = 0, random.Random(20)
    for kill in range(KILLS):
        worker = spawn(url, LIMIT, 10**6)
        assert worker.stdout is not None
        wanted, seen = rng.randint(5, 60), 0
        while seen < wanted:
            if worker.stdout.readline().strip() == "ack":
                seen += 1
        worker.kill()
        worker.wait()
        seen += worker.stdout.read().split().count("ack")  # printed before the kill: acknowledged too
        acked += seen
        spent = LIMIT - asyncio.run(_remaining(url, (Bucket(BUCKET, LIMIT),)))
        assert acked <= spent <= acked + kill + 1, (kill, acked, spent)  # one in flight per kill, at most


async def _remaining(url: str, buckets: tuple[Bucket, ...]) -> int:
    ledger = open_ledger(url)
    try:
        left = await ledger.remaining("acme", buckets)
        assert left is not None
        return left
    finally:
        await ledger.close()


async def test_redis_twenty_kills_under_load_lose_nothing_and_spend_nothing_unacknowledged(tmp_path):
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    ledger = fresh_ledger(server.url + "?timeout_ms=250")
    bucket = Bucket("f" * 32, LIMIT)
    acked, rng = 0, random.Random(21)

    async def one() -> bool:
        request = DebitRequest(
            "acme",
            ("a" * 32,),
            (bucket,),
            1,
            secrets.token_hex(16),
            deadline=time.time() + 0.5,
            attempt=secrets.token_hex(8),
        )
        try:
            return (await ledger.debit(request)).outcome is Outcome.DEBITED
        except LedgerUnavailable:
            return False

    try:
        for kill in range(KILLS):
            load = [asyncio.create_task(one()) for _ in range(200)]
            await asyncio.sleep(rng.uniform(0.0, 0.03))
            server.kill()  # mid-load: some debits acknowledged, some in flight, some never sent
            acked += sum(await asyncio.gather(*load))
            server.start()
            await ledger._refunds.drain(10)  # debits of unknown outcome are settled once their deadline passed
            for _ in range(100):
                try:
                    left = await ledger.remaining("acme", (bucket,))
                    break
                except LedgerUnavailable:
                    await asyncio.sleep(0.05)
            assert LIMIT - left == acked, (kill, acked, LIMIT - left)
    finally:
        await ledger.close()
        server.stop()
