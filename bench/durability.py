"""What each durability setting of the ledger costs: debits per second, 32 in flight (as the check sends them),
on SQLite with synchronous=NORMAL (the default: every acknowledged debit survives a process crash) and FULL (also
a power loss), and on Redis with AOF appendfsync always (as shipped: survives a crash of Redis or the host) and
everysec (a crash can lose up to the last second of acknowledged debits), and without persistence.
`./dev bench --durability [--debits N]`; bounded by N per row."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from satgate.ledger import Bucket, DebitRequest
from satgate.ledger.initialise import init_ledger_blocking
from satgate.ledger.url import open_ledger
from satgate_dev.redis_server import RedisServer

IN_FLIGHT = 32


async def rate(url: str, debits: int) -> float:
    init_ledger_blocking(url)
    ledger = open_ledger(url)
    bucket = Bucket(secrets.token_hex(16), 10**15)

    def request() -> DebitRequest:
        return DebitRequest("bench", ("a" * 32,), (bucket,), 1, secrets.token_hex(16), attempt=secrets.token_hex(8))

    try:
        await asyncio.gather(*(ledger.debit(request()) for _ in range(IN_FLIGHT)))  # warm
        started = time.perf_counter()
        for _ in range(debits // IN_FLIGHT):
            await asyncio.gather(*(ledger.debit(request()) for _ in range(IN_FLIGHT)))
        return (debits // IN_FLIGHT) * IN_FLIGHT / (time.perf_counter() - started)
    finally:
        await ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debits", type=int, default=20_000, help="per row (at most 200 000)")
    debits = min(parser.parse_args().debits, 200_000)
    rows: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="satgate-durability-") as tmp:
        state = Path(tmp)
        for mode in ("NORMAL", "FULL"):
            rows[f"sqlite synchronous={mode}"] = asyncio.run(
                rate(f"sqlite:///{state}/{mode}.db?synchronous={mode}", debits)
            )
        for name, server in (
            ("redis appendfsync always", RedisServer(state / "always", persistent=True, fsync="always")),
            ("redis appendfsync everysec", RedisServer(state / "everysec", persistent=True, fsync="everysec")),
            ("redis no persistence", RedisServer(state / "none")),
        ):
            server.start()
            try:
                rows[name] = asyncio.run(rate(server.url, debits))
            finally:
                server.stop()
    base = {"sqlite": rows["sqlite synchronous=NORMAL"], "redis": rows["redis appendfsync always"]}
    print(f"ledger debits/s, {IN_FLIGHT} in flight, {debits} per row (ratio to the shipped setting of its store):")
    for name, value in rows.items():
        print(f"  {name:28s} {value:9,.0f}/s  {value / base[name.split()[0]]:.2f}x")


if __name__ == "__main__":
    main()
