"""Redis failover behind Sentinel, with and without wait_replicas: a primary, one replica and redis-sentinel on
loopback; 32 clients spend one bucket down to zero while the primary is killed (SIGKILL), Sentinel promotes the
replica and the old primary rejoins as its replica. Per round: debits acknowledged and lost (acknowledged but not
on the new primary), overspend (acknowledged beyond the limit), seconds without a primary, and the debit rate
before the kill. Rounds alternate the two settings so both see the same machine.
`./dev bench --failover [--rounds N]`; each round bounded (90 s)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from satgate.ledger import Bucket, DebitRequest, LedgerUnavailable, Outcome
from satgate.ledger.initialise import init_ledger_blocking
from satgate.ledger.redis_keys import bucket_key
from satgate.ledger.url import open_ledger
from satgate_dev.redis_sentinel import SentinelGroup

CLIENTS = 32
LIMIT = 20_000
KILL_AFTER = 8_000  # acknowledged debits before the kill


@dataclass
class Round:
    wait_replicas: int
    acknowledged: int = 0
    spent: int = 0
    unavailable: int = 0
    no_primary_seconds: float = 0.0
    rate: float = 0.0

    @property
    def lost(self) -> int:
        return max(self.acknowledged - self.spent, 0)

    @property
    def overspend(self) -> int:
        return max(self.acknowledged - LIMIT, 0)


async def one_round(directory: Path, wait_replicas: int) -> Round:
    group = SentinelGroup(directory).start()
    url = group.url(f"?wait_replicas={wait_replicas}")
    init_ledger_blocking(url)
    ledger = open_ledger(url)
    bucket = Bucket(secrets.token_hex(16), LIMIT)
    result = Round(wait_replicas)

    async def client() -> None:
        give_up = time.monotonic() + 90
        while time.monotonic() < give_up:
            request = DebitRequest(
                "bench", ("a" * 32,), (bucket,), 1, secrets.token_hex(16), time.time() + 0.5, secrets.token_hex(8)
            )
            try:
                answer = await ledger.debit(request)
            except LedgerUnavailable:
                result.unavailable += 1
                await asyncio.sleep(0.02)
                continue
            if answer.outcome is Outcome.INSUFFICIENT:
                return
            result.acknowledged += answer.spent

    try:
        started = time.perf_counter()
        clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
        while result.acknowledged < KILL_AFTER:
            await asyncio.sleep(0.005)
        result.rate = result.acknowledged / (time.perf_counter() - started)
        old, result.no_primary_seconds = await asyncio.to_thread(group.kill_primary)
        await asyncio.to_thread(group.rejoin, old)
        await asyncio.gather(*clients)
        await ledger._refunds.drain(60)  # the refunds owed for answers lost in the failover
        current = group.server(group.sentinel.primary())
        assert current is not None
        result.spent = int(current.cli("get", bucket_key("bench", bucket.bucket_id)).strip() or 0)
        return result
    finally:
        await ledger.close()
        group.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="per setting (at most 20)")
    rounds = min(parser.parse_args().rounds, 20)
    rows: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="satgate-failover-") as tmp:
        for i in range(rounds):
            for wait in (1, 0):
                rows.append(asyncio.run(one_round(Path(tmp) / f"{i}-{wait}", wait)))
    heading = ("wait_replicas", "debits/s", "no primary s", "503s", "acked", "lost", "over")
    print(" ".join(f"{h:>{w}}" for h, w in zip(heading, (13, 9, 12, 6, 6, 5, 5), strict=True)))
    for row in rows:
        print(
            f"{row.wait_replicas:>13} {row.rate:>9.0f} {row.no_primary_seconds:>12.1f} {row.unavailable:>6} "
            f"{row.acknowledged:>6} {row.lost:>5} {row.overspend:>5}"
        )
    for wait in (1, 0):
        mine = [r for r in rows if r.wait_replicas == wait]
        print(
            f"wait_replicas={wait}: lost {sum(r.lost for r in mine)} and overspent {sum(r.overspend for r in mine)} "
            f"acknowledged debits over {len(mine)} failovers; {sum(r.rate for r in mine) / len(mine):.0f} debits/s"
        )


if __name__ == "__main__":
    main()
