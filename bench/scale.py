"""Does a check stay cheap as the mesh grows? The check pipeline in process with a SQLite debit, p50 µs per check
(one at a time, warm token unless stated; the quietest of three rounds' medians), each row at 1x and at larger
sizes, with each cell's ratio to 1x:

  route rules      server-side route table size, the request matching the last rule
  delegation depth a budget at every step (each step adds a bucket and a revocation id)
  token            the same token every request (warm), verified afresh each time (uncached), or a new token
                   each time (cold: a verify cache miss, and a new budget bucket in the ledger)
  ledger rows      buckets and revocations already in the ledger

  distinct tokens  one process verifying many tokens: the warm check before and after, and its RSS

    ./dev bench --scale [--checks 2000] [--tokens 100000] [--big] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from authz_server.check import CheckPipeline, CheckSettings  # noqa: E402
from authz_server.check_input import CheckInput  # noqa: E402
from satgate.keyring import Keyring  # noqa: E402
from satgate.ledger.initialise import init_ledger_blocking  # noqa: E402
from satgate.ledger.url import open_ledger  # noqa: E402
from satgate.routes import RouteRule, RouteTable  # noqa: E402
from satgate.tokens.delegate import delegate  # noqa: E402
from satgate.tokens.mint import mint  # noqa: E402
from satgate.tokens.verify import TokenVerifier  # noqa: E402

HOST, PATH = "api.example.com", "/v1/items/42"
ROOT_CAVEATS = [("expires", "2099-01-01T00:00:00Z"), ("scope", "api:*"), ("budget", str(10**15))]


def routes(count: int) -> RouteTable:
    rules = [
        RouteRule({"scope": "api:read"}, path_prefix=f"/svc{i}/", host=f"svc{i}.mesh.local") for i in range(count - 1)
    ]
    return RouteTable([*rules, RouteRule({"scope": "api:read"}, path_prefix="/v1/", host=HOST)])


def fill_ledger(url: str, rows: int) -> None:
    """Half buckets, half revocations, of other tenants and tokens (what a busy ledger holds)."""
    db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO buckets VALUES (?, ?, 1000, 1)", ((f"t{i % 10000}", f"{i:032x}") for i in range(rows // 2))
    )
    db.executemany(
        "INSERT INTO revocations VALUES (?, ?, 0, '')", ((f"t{i % 10000}", f"{i:032x}") for i in range(rows // 2))
    )
    db.execute("COMMIT")
    db.close()


async def p50(
    keyring: Keyring, state: Path, tokens: list[str], checks: int, *, table=None, cold=False, rows=0
) -> float:
    url = f"sqlite:///{state}/ledger-{uuid.uuid4().hex}.db"
    init_ledger_blocking(url)
    if rows:
        fill_ledger(url, rows)
    ledger = open_ledger(url)
    verifier = TokenVerifier(keyring, cache_size=0, refusal_cache_size=0) if cold else TokenVerifier(keyring)
    pipeline = CheckPipeline(
        verifier=verifier, ledger=ledger, routes=table or RouteTable(), settings=CheckSettings(decision_log="none")
    )
    context = {} if table else {"scope": "api:read"}

    def request(i: int) -> CheckInput:
        token = tokens[i % len(tokens)]
        return CheckInput("GET", PATH, HOST, {"authorization": f"Bearer {token}", "x-request-id": str(i)}, "", context)

    for i in range(300):
        await pipeline.check(request(i))
    medians = []
    for round_start in range(300, 300 + 3 * checks, checks):  # three rounds; the quietest median (VM noise)
        samples = []
        for i in range(round_start, round_start + checks):
            began = time.perf_counter_ns()
            await pipeline.check(request(i))
            samples.append((time.perf_counter_ns() - began) / 1000)
        samples.sort()
        medians.append(samples[len(samples) // 2])
    await ledger.close()
    return min(medians)


def rss_mib() -> float:
    """This process's resident set now (Linux /proc), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def distinct_tokens(keyring: Keyring, state: Path, count: int, checks: int) -> dict[str, float]:
    """One process sees `count` distinct tokens: the warm check before and after, RSS, the caches' sizes."""
    root = mint(keyring, "bench", ROOT_CAVEATS).token
    url = f"sqlite:///{state}/ledger-tokens.db"
    init_ledger_blocking(url)
    ledger = open_ledger(url)
    verifier = TokenVerifier(keyring)
    pipeline = CheckPipeline(verifier=verifier, ledger=ledger, routes=RouteTable(), settings=CheckSettings())

    async def warm_p50(offset: int) -> float:
        samples = []
        for i in range(checks):
            request = CheckInput(
                "GET", PATH, HOST, {"authorization": f"Bearer {root}", "x-request-id": f"{offset}-{i}"}, "", {}
            )
            began = time.perf_counter_ns()
            await pipeline.check(request)
            samples.append((time.perf_counter_ns() - began) / 1000)
        samples.sort()
        return samples[len(samples) // 2]

    await warm_p50(0)
    before, rss_before = await warm_p50(1), rss_mib()
    for start in range(0, count, 10_000):  # minted and verified in batches: the tokens themselves are not kept
        for token in [mint(keyring, "bench", ROOT_CAVEATS).token for _ in range(min(10_000, count - start))]:
            verifier.verify(token)
    after, rss_after = await warm_p50(2), rss_mib()
    await ledger.close()
    return {
        "tokens": count,
        "warm_p50_before_us": before,
        "warm_p50_after_us": after,
        "rss_before_mib": rss_before,
        "rss_after_mib": rss_after,
    }


async def measure(checks: int, state: Path, big: bool) -> dict[str, dict[str, float]]:
    keyring = Keyring.generate()
    root = mint(keyring, "bench", ROOT_CAVEATS).token
    chain = [root]
    for step in range(16):
        chain.append(delegate(chain[-1], ttl_seconds=86400, budget_credits=10**14 - step).token)
    fresh = [mint(keyring, "bench", ROOT_CAVEATS).token for _ in range(3 * checks + 300)]
    table: dict[str, dict[str, float]] = {"route rules": {}, "delegation depth": {}, "token": {}, "ledger rows": {}}
    for count in (1, 100, 1000, 10000):
        table["route rules"][str(count)] = await p50(keyring, state, [root], checks, table=routes(count))
    for depth in (0, 4, 8, 16):
        table["delegation depth"][str(depth)] = await p50(keyring, state, [chain[depth]], checks)
    table["token"]["warm"] = await p50(keyring, state, [root], checks)
    table["token"]["uncached"] = await p50(keyring, state, [root], checks, cold=True)  # verify every time
    table["token"]["cold"] = await p50(keyring, state, fresh, checks, cold=True)  # and a new budget bucket each
    for rows in (0, 10**5, 10**6, *((10**7,) if big else ())):
        table["ledger rows"][f"{rows:.0e}" if rows else "0"] = await p50(keyring, state, [root], checks, rows=rows)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=2000, help="measured checks per cell and round")
    parser.add_argument(
        "--tokens", type=int, default=100_000, help="distinct tokens one process sees (1000000: ~2 min)"
    )
    parser.add_argument("--big", action="store_true", help="also 10^7 ledger rows (a minute or two to fill)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="satgate-scale-") as tmp:
        table = asyncio.run(measure(args.checks, Path(tmp), args.big))
        tokens = asyncio.run(distinct_tokens(Keyring.generate(), Path(tmp), args.tokens, args.checks))
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps({"p50_us": table, "distinct_tokens": tokens, "max_rss_mib": max_rss}, indent=2))
        return
    print("p50 µs per check, in process, SQLite debit (ratio to the row's first column):")
    for row, cells in table.items():
        first = next(iter(cells.values()))
        shown = "   ".join(f"{size}: {value:6.1f} ({value / first:4.2f}x)" for size, value in cells.items())
        print(f"  {row:17s} {shown}")
    depth = table["delegation depth"]
    print(f"  per delegation step (0 → 16): {(depth['16'] - depth['0']) / 16:.2f} µs (target <= 5)")
    token = table["token"]
    print(
        f"  cold token over warm: {token['cold'] - token['warm']:+.1f} µs (target <= 40), of which verifying it"
        f" {token['uncached'] - token['warm']:+.1f} µs and the rest its new budget bucket in the ledger"
    )
    print(f"  routes 10 000 / 1: {table['route rules']['10000'] / table['route rules']['1']:.2f}x (target <= 1.1)")
    print(
        f"  {tokens['tokens']} distinct tokens seen by one process: warm check {tokens['warm_p50_before_us']:.1f} →"
        f" {tokens['warm_p50_after_us']:.1f} µs ({tokens['warm_p50_after_us'] / tokens['warm_p50_before_us']:.2f}x,"
        f" target <= 1.1), RSS {tokens['rss_before_mib']:.0f} → {tokens['rss_after_mib']:.0f} MiB (caches bounded)"
    )
    print(f"  max RSS of this process: {max_rss:.0f} MiB")


if __name__ == "__main__":
    main()
