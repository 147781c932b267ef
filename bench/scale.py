"""Does a check stay cheap as the mesh grows? The check pipeline in process with a SQLite debit, p50 µs per check
(one at a time, warm token unless stated; the quietest of five rounds' medians, the cells of a row checked in
turn), each row at 1x and at larger sizes, with each cell's ratio to 1x:

  route rules      server-side route table size, the request matching the last rule
  delegation depth a budget at every step (each step adds a bucket and a revocation id)
  token            the same token every request (warm), verified afresh each time (uncached), or a new token
                   each time (cold: a verify cache miss, and a new budget bucket in the ledger)
  ledger rows      buckets and revocations of 10 000 tenants already in the ledger (--big: 10^7)
  revocations      revoked ids already in the ledger, among them the bench tenant's own
  tenants          a token per tenant, round robin, every verdict cached, metrics on (a series per tenant)

  distinct tokens  one process verifying many tokens: the warm check before and after, and its RSS
  records          idempotency records over a sustained run, on SQLite and on a private redis-server (bench/records.py)
  tcp vs uds       wrk through one Envoy, the authz cluster over loopback TCP and over a unix socket

    ./dev bench --scale [--checks 1200] [--tokens 100000] [--big] [--records-seconds 8] [--uds-seconds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import records  # noqa: E402

from authz_server.check import CheckPipeline, CheckSettings  # noqa: E402
from authz_server.check_input import CheckInput  # noqa: E402
from authz_server.metrics import CheckMetrics  # noqa: E402
from satgate.keyring import Keyring  # noqa: E402
from satgate.ledger import Ledger  # noqa: E402
from satgate.ledger.initialise import init_ledger_blocking  # noqa: E402
from satgate.ledger.url import open_ledger  # noqa: E402
from satgate.routes import RouteRule, RouteTable  # noqa: E402
from satgate.tokens.delegate import delegate  # noqa: E402
from satgate.tokens.mint import mint  # noqa: E402
from satgate.tokens.verify import TokenVerifier  # noqa: E402
from satgate_dev.redis_server import RedisServer  # noqa: E402

HOST, PATH = "api.example.com", "/v1/items/42"
ROOT_CAVEATS = [("expires", "2099-01-01T00:00:00Z"), ("scope", "api:*"), ("budget", str(10**15))]
ROWS = ("route rules", "delegation depth", "token", "ledger rows", "revocations", "tenants")
ROUNDS = 5
WARM_UP = 300


def routes(count: int) -> RouteTable:
    rules = [
        RouteRule({"scope": "api:read"}, path_prefix=f"/svc{i}/", host=f"svc{i}.mesh.local") for i in range(count - 1)
    ]
    return RouteTable([*rules, RouteRule({"scope": "api:read"}, path_prefix="/v1/", host=HOST)])


def fill_ledger(url: str, buckets: int, revocations: int, tenants: int = 10_000) -> None:
    """Rows of other tokens: `tenants` tenants' (the bench's own among them, so its lookups descend the full
    b-trees), as a busy ledger holds."""
    db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    db.execute("BEGIN")
    tenant = ["bench", *(f"t{i}" for i in range(1, tenants))]
    db.executemany(
        "INSERT INTO buckets VALUES (?, ?, 1000, 1)", ((tenant[i % tenants], f"{i:032x}") for i in range(buckets))
    )
    db.executemany(
        "INSERT INTO revocations VALUES (?, ?, 0, '')",
        ((tenant[i % tenants], f"{i:032x}") for i in range(revocations)),
    )
    db.execute("COMMIT")
    db.close()


@dataclass
class Cell:
    """One table cell: its own ledger and pipeline."""

    pipeline: CheckPipeline
    ledger: Ledger
    tokens: list[str]
    context: dict[str, str]
    sent: int = 0
    medians: list[float] = field(default_factory=list)

    def request(self) -> CheckInput:
        token = self.tokens[self.sent % len(self.tokens)]
        headers = {"authorization": f"Bearer {token}", "x-request-id": str(self.sent)}
        self.sent += 1
        return CheckInput("GET", PATH, HOST, headers, "", self.context)

    async def sample(self) -> float:
        request = self.request()
        began = time.perf_counter_ns()
        await self.pipeline.check(request)
        return (time.perf_counter_ns() - began) / 1000


async def lockstep_round(row: dict[str, Cell], checks: int) -> None:
    """One round of a row: a check on each of its cells in turn, so whatever the VM does meanwhile lands on
    every cell alike and the ratios to the first column compare like with like."""
    samples: dict[str, list[float]] = {size: [] for size in row}
    for _ in range(checks):
        for size, measured in row.items():
            samples[size].append(await measured.sample())
    for size, measured in row.items():
        ordered = sorted(samples[size])
        measured.medians.append(ordered[len(ordered) // 2])


async def cell(
    keyring: Keyring,
    state: Path,
    tokens: list[str],
    *,
    table: RouteTable | None = None,
    cold: bool = False,
    buckets: int = 0,
    revocations: int = 0,
    metrics: bool = False,
) -> Cell:
    url = f"sqlite:///{state}/ledger-{uuid.uuid4().hex}.db"
    init_ledger_blocking(url)
    if buckets or revocations:
        fill_ledger(url, buckets, revocations)
    ledger = open_ledger(url)
    verifier = TokenVerifier(keyring, cache_size=0, refusal_cache_size=0) if cold else TokenVerifier(keyring)
    pipeline = CheckPipeline(
        verifier=verifier,
        ledger=ledger,
        routes=table or RouteTable(),
        settings=CheckSettings(decision_log="none"),
        metrics=CheckMetrics() if metrics else None,
    )
    measured = Cell(pipeline, ledger, tokens, {} if table else {"scope": "api:read"})
    for _ in range(WARM_UP if cold else max(WARM_UP, len(tokens))):  # every token of a warm cell verified once
        await pipeline.check(measured.request())
    return measured


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
    fresh = [mint(keyring, "bench", ROOT_CAVEATS).token for _ in range(ROUNDS * checks + WARM_UP)]
    per_tenant = [mint(keyring, f"t{i}", ROOT_CAVEATS).token for i in range(10_000)]
    cells: dict[str, dict[str, Cell]] = {row: {} for row in ROWS}
    for count in (1, 100, 1000, 10000):
        cells["route rules"][str(count)] = await cell(keyring, state, [root], table=routes(count))
    for depth in (0, 4, 8, 16):
        cells["delegation depth"][str(depth)] = await cell(keyring, state, [chain[depth]])
    cells["token"]["warm"] = await cell(keyring, state, [root])
    cells["token"]["uncached"] = await cell(keyring, state, [root], cold=True)  # verified every time
    cells["token"]["cold"] = await cell(keyring, state, fresh, cold=True)  # and a new budget bucket each
    for rows in (0, 10**5, 10**6, *((10**7,) if big else ())):
        cells["ledger rows"][_size(rows)] = await cell(keyring, state, [root], buckets=rows // 2, revocations=rows // 2)
    for count in (0, 10**5, 10**6):
        cells["revocations"][_size(count)] = await cell(keyring, state, [root], revocations=count)
    for count in (1, 100, 10_000):  # a token per tenant, round robin; metrics on (a credits series per tenant)
        cells["tenants"][_size(count)] = await cell(keyring, state, per_tenant[:count], metrics=True)
    for _ in range(ROUNDS):  # the quietest of the rounds' medians, the rounds of all rows interleaved
        for row in cells.values():
            await lockstep_round(row, checks)
    table = {row: {size: min(c.medians) for size, c in row_cells.items()} for row, row_cells in cells.items()}
    for row_cells in cells.values():
        for measured in row_cells.values():
            await measured.ledger.close()
    return table


def _size(count: int) -> str:
    return f"{count:.0e}".replace("+0", "") if count >= 10_000 else str(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=1200, help="measured checks per cell and round")
    parser.add_argument(
        "--tokens", type=int, default=100_000, help="distinct tokens one process sees (1000000: ~2 min)"
    )
    parser.add_argument("--big", action="store_true", help="also 10^7 ledger rows (a minute or two to fill)")
    parser.add_argument(
        "--records-seconds", type=float, default=8.0, help="sustained run per store for the records rows (0: skip)"
    )
    parser.add_argument(
        "--uds-seconds", type=float, default=3.0, help="wrk seconds per row of the TCP vs UDS rows (0: skip)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="satgate-scale-") as tmp:
        table = asyncio.run(measure(args.checks, Path(tmp), args.big))
        tokens = asyncio.run(distinct_tokens(Keyring.generate(), Path(tmp), args.tokens, args.checks))
        kept = sustained_records(Path(tmp), args.records_seconds) if args.records_seconds else {}
        sockets = tcp_vs_unix_socket(Path(tmp), args.uds_seconds) if args.uds_seconds else {}
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        kept_json = {store: dataclasses.asdict(run) for store, run in kept.items()}
        output = {
            "p50_us": table,
            "distinct_tokens": tokens,
            "records": kept_json,
            "tcp_vs_uds_rps": sockets,
            "max_rss_mib": max_rss,
        }
        print(json.dumps(output, indent=2))
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
    for row, size in (("ledger rows", "1e6"), ("ledger rows", "1e7"), ("revocations", "1e6"), ("tenants", "1e4")):
        if size in table[row]:
            ratio = table[row][size] / next(iter(table[row].values()))
            print(f"  {row} {size} / first: {ratio:.2f}x (target <= 1.1)")
    print(
        f"  {tokens['tokens']} distinct tokens seen by one process: warm check {tokens['warm_p50_before_us']:.1f} →"
        f" {tokens['warm_p50_after_us']:.1f} µs ({tokens['warm_p50_after_us'] / tokens['warm_p50_before_us']:.2f}x,"
        f" target <= 1.1), RSS {tokens['rss_before_mib']:.0f} → {tokens['rss_after_mib']:.0f} MiB (caches bounded)"
    )
    print(f"  max RSS of this process: {max_rss:.0f} MiB")
    if sockets:
        print("through one Envoy, the authz cluster over loopback TCP vs a unix socket (wrk rps, ratio to TCP):")
        for row, (tcp, uds) in sockets.items():
            print(f"  {row:17s} tcp: {tcp:7.0f}   uds: {uds:7.0f} ({uds / tcp:4.2f}x)")
    if kept:
        print("idempotency records over a sustained run (bench/records.py; the window shortened from 10 min):")
        for store, run in kept.items():
            print(records.describe(store, run))


UDS_PAIRS = {"no-op HTTP": ("noop_http", "noop_http_uds"), "full gRPC": ("full", "full_uds")}
UDS_PAIRS["full HTTP"] = ("full_http", "full_http_uds")


def tcp_vs_unix_socket(state: Path, seconds: float) -> dict[str, tuple[float, float]]:
    """The `*_uds` rows of `./dev bench` beside their TCP rows, in one Envoy (bench.py's machinery)."""
    if shutil.which("wrk") is None:
        print("wrk not found: no TCP vs UDS rows (./dev installs it)", file=sys.stderr)
        return {}
    import bench  # noqa: PLC0415 - Envoy, wrk and the servers only when this row runs

    settings = argparse.Namespace(duration=seconds, connections=32, rounds=2, workers=1, rate=0)
    wanted = [name for pair in UDS_PAIRS.values() for name in pair]
    redis = RedisServer(state / "redis-uds").start()  # the runner wants one; these rows do not use it
    try:
        runs, _sent, _fixed = bench.run_through_envoy(settings, state, redis, wanted, fixed_rate=False)
    finally:
        redis.stop()
    best = {name: max(run["rps"] for run in row_runs) for name, row_runs in runs.items()}
    return {row: (best[tcp], best[uds]) for row, (tcp, uds) in UDS_PAIRS.items()}


def sustained_records(state: Path, seconds: float, window: int = 2) -> dict[str, records.SustainedRun]:
    kept = {"sqlite": asyncio.run(records.sqlite_records(state, seconds, window))}
    if shutil.which("redis-server") is None:
        print("redis-server not found: no Redis records row (./dev installs it)", file=sys.stderr)
        return kept
    redis = RedisServer(state / "redis").start()
    try:
        kept["redis"] = asyncio.run(records.redis_records(redis.url, redis.cli, seconds, window))
    finally:
        redis.stop()
    return kept


if __name__ == "__main__":
    main()
