"""The other processes of the model test: a second writer, and an authz process killed before it answers. Each
is a script run with `python -c`, so that it is a real process on the same store."""

OTHER_WRITER = """
import asyncio, json, secrets, sys, time
from satgate.ledger import Bucket, DebitRequest, LedgerUnavailable
from satgate.ledger.url import open_ledger
from satgate.ledger.windows import Period
async def main():
    ledger = open_ledger(sys.argv[1])
    for line in sys.stdin:  # one burst per line: prepare, say ready, wait for go, debit all at once
        spec = json.loads(line)
        buckets = tuple(Bucket(b, l, Period.parse(p) if p else None) for b, l, p in spec["buckets"])
        requests = [DebitRequest(spec["tenant"], tuple(spec["ids"]), buckets, spec["cost"], secrets.token_hex(16),
                                 attempt=secrets.token_hex(8), checked_at=spec["at"], deadline=time.time() + 2)
                    for _ in range(spec["count"])]
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(*(ledger.debit(r) for r in requests), return_exceptions=True)
        print(json.dumps([r.outcome.value if not isinstance(r, LedgerUnavailable) else None for r in results]),
              flush=True)
    await ledger.close()
asyncio.run(main())
"""

KILLED_BEFORE_ANSWERING = """
import asyncio, json, sys, time
from satgate.ledger import Bucket, DebitRequest, LedgerUnavailable
from satgate.ledger.url import open_ledger
from satgate.ledger.windows import Period
async def main():
    spec = json.loads(sys.argv[2])
    buckets = tuple(Bucket(b, l, Period.parse(p) if p else None) for b, l, p in spec["buckets"])
    request = DebitRequest(spec["tenant"], tuple(spec["ids"]), buckets, spec["cost"], spec["debit_id"],
                           deadline=spec["deadline"], attempt=spec["attempt"], checked_at=spec["checked_at"])
    ledger = open_ledger(sys.argv[1])
    try:
        outcome = (await ledger.debit(request)).outcome.value
    except LedgerUnavailable:
        outcome = "unknown"
    print(outcome, flush=True)  # the store has judged it; the answer to Envoy is never sent: SIGKILL comes now
    await asyncio.sleep(60)
asyncio.run(main())
"""


def bucket_specs(buckets) -> list[tuple[str, int, str]]:
    return [(b.bucket_id, b.limit, str(b.period) if b.period else "") for b in buckets]
