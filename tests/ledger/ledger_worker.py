"""Run in a separate process by the SQLite tests: debit a shared bucket and report each acknowledgement."""

import asyncio
import sys

from satgate.ledger import Bucket, DebitRequest, Outcome
from satgate.ledger.url import open_ledger


async def main(url: str, bucket_id: str, limit: int, attempts: int) -> None:
    ledger = open_ledger(url)
    for _ in range(attempts):
        result = await ledger.debit(DebitRequest("acme", ("a" * 32,), (Bucket(bucket_id, limit),), 1))
        print("ack" if result.outcome is Outcome.DEBITED else "no", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
