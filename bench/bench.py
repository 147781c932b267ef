"""SatGate benchmark: one run, one Envoy, one listener per row, built from the shipped configs.

  plain                - Envoy alone (ext_authz filter removed)
  noop / noop_http     - ext_authz to a server that allows everything: grpc.aio; uvicorn + a bare ASGI callable
  full / full_http     - the satgate check on each transport: verify, caveats, SQLite debit, headers
  full_redis / ..._redis - the same on the Redis ledger (a private redis-server the bench starts)
  full_mcp / mcp_http  - an MCP route: the JSON-RPC body buffered, parsed and priced
  full_w2 / ..._w2     - authz.workers: 2 on one SQLite ledger

Closed loop (wrk) for throughput, then a fixed-rate run (hey, --rate) for the latency the check adds over the no-op
server of its transport. Routes answer with direct_response so the upstream never limits the figures. Also measures
the check handler in process (bench/handler.py). Reports ratios; asserts nothing.

    ./dev bench [--duration 8] [--connections 32] [--rounds 2] [--workers 1] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from satgate.keyring import load_or_create_keyring, write_keyring  # noqa: E402
from satgate.ledger.initialise import init_ledger_blocking  # noqa: E402
from satgate.tokens.mint import mint  # noqa: E402
from satgate_dev import envoy_config  # noqa: E402
from satgate_dev.devstack import LOOPBACK, free_port, grpc_serving, http_ok, unix_http_status  # noqa: E402
from satgate_dev.redis_server import RedisServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from envoy_rows import (  # noqa: E402
    BENCH_PATH,
    FIXED_RATE_ROWS,
    HTTP_ROUTES,
    MCP_BODY,
    ROWS,
    UDS_CLUSTERS,
    bench_envoy_config,
)
from floods import hey  # noqa: E402
from handler import CONCURRENT, handler_microseconds  # noqa: E402


def wrk(
    port: int, token: str, duration: float, connections: int, script: Path | None = None, path: str = BENCH_PATH
) -> dict[str, float]:
    result = subprocess.run(
        [
            "wrk",
            *(["-s", str(script)] if script else []),
            "-t",
            "2",
            "-c",
            str(connections),
            "-d",
            f"{max(int(duration), 1)}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            f"http://{LOOPBACK}:{port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    )
    out = result.stdout
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "p50_ms": float(p50.group(1)) * scale[p50.group(2)],
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)],
    }


def evalsha_calls(redis: RedisServer) -> int:
    for line in redis.cli("info", "commandstats").splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def wait(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def authz_ready(transport: str, address: str) -> bool:
    if transport == "grpc":
        return grpc_serving(address)
    if address.startswith("unix:"):
        return unix_http_status(address.removeprefix("unix:"), "/readyz") == 204
    return http_ok(f"http://{address}/readyz", status=204)


def run_through_envoy(
    args: argparse.Namespace, state: Path, redis: RedisServer, rows: Iterable[str] = ROWS, fixed_rate: bool = True
):
    """wrk through one Envoy on each of `rows` (and hey at a fixed rate on FIXED_RATE_ROWS): only the servers
    those rows need are started."""
    selected = {name: ROWS[name] for name in rows}
    keyring_path = state / "keyring.json"
    keyring, _ = load_or_create_keyring(keyring_path)
    write_keyring(keyring_path, keyring)
    # mcp:* too: tool calls require mcp:tool:<name>
    token = mint(keyring, "bench", [("scope", "api:*,mcp:*"), ("budget", str(10**15))]).token
    clusters = {row.cluster for row in selected.values() if row.cluster}
    cluster_addresses = {
        name: f"unix:{state}/{name}.sock" if name in UDS_CLUSTERS else f"{LOOPBACK}:{free_port()}" for name in clusters
    }
    ports = {name: free_port() for name in selected}
    admin_port = free_port()
    procs = []
    servers = {  # cluster: transport, ledger, workers
        "satgate_authz": ("grpc", f"sqlite:///{state}/ledger.db", args.workers),
        "satgate_authz_redis": ("grpc", redis.url, args.workers),
        "satgate_authz_http": ("http", f"sqlite:///{state}/ledger-http.db", args.workers),
        "satgate_authz_http_redis": ("http", redis.url, args.workers),
        "satgate_authz_w2": ("grpc", f"sqlite:///{state}/ledger-w2.db", 2),
        "satgate_authz_http_w2": ("http", f"sqlite:///{state}/ledger-http-w2.db", 2),
        "satgate_authz_uds": ("grpc", f"sqlite:///{state}/ledger-uds.db", 1),
        "satgate_authz_http_uds": ("http", f"sqlite:///{state}/ledger-http-uds.db", 1),
    }
    servers = {cluster: server for cluster, server in servers.items() if cluster in clusters}
    for cluster, (transport, ledger, workers) in servers.items():
        init_ledger_blocking(ledger)
        listen = cluster_addresses[cluster]
        authz: dict = {"transport": transport, "workers": workers}
        authz.update({"listen": listen} if transport == "grpc" else {"http_listen": listen, "routes": HTTP_ROUTES})
        config = state / f"{cluster}.yaml"
        config.write_text(
            yaml.safe_dump({"keyring": str(keyring_path), "ledger": ledger, "log_level": "warning", "authz": authz})
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "satgate_cli", "authz", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    noops = {
        "noop_authz": Path(__file__).with_name("noop_authz.py"),
        "noop_http": Path(__file__).with_name("noop_http.py"),
        "noop_http_uds": Path(__file__).with_name("noop_http.py"),
    }
    noops = {cluster: script for cluster, script in noops.items() if cluster in clusters}
    for cluster, script in noops.items():
        argv = [sys.executable, str(script), cluster_addresses[cluster]]
        noop = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        procs.append(noop)
        assert noop.stdout is not None
        assert noop.stdout.readline().strip() == "ready", f"{cluster} did not start"
    envoy_yaml = envoy_config.write_rendered(
        state / "envoy.yaml", bench_envoy_config(ports, cluster_addresses, admin_port)
    )
    procs.append(
        subprocess.Popen(
            [
                envoy_config.find_envoy(),
                "-c",
                str(envoy_yaml),
                "--use-dynamic-base-id",
                "--log-level",
                "error",
                "--concurrency",
                "1",
            ],
            stdout=subprocess.DEVNULL,
        )
    )
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in ports}
    sent = dict.fromkeys(ports, 0)
    try:
        for cluster, (transport, _ledger, _workers) in servers.items():
            wait(lambda c=cluster, t=transport: authz_ready(t, cluster_addresses[c]), cluster)
        for noop in {"noop_http", "noop_http_uds"} & clusters:
            wait(lambda n=noop: authz_ready("http", cluster_addresses[n]), noop)
        time.sleep(1.0)
        post_mcp = state / "mcp.lua"
        post_mcp.write_text(
            f"wrk.method = 'POST'\nwrk.body = '{MCP_BODY}'\nwrk.headers['Content-Type'] = 'application/json'\n"
        )
        scripts = {name: post_mcp for name, row in selected.items() if row.mcp}
        for name, port in ports.items():  # warm every path once
            sent[name] += wrk(port, token, 1.0, 4, scripts.get(name), ROWS[name].path)["requests"]
        for _ in range(args.rounds):
            for name, port in ports.items():
                result = wrk(port, token, args.duration, args.connections, scripts.get(name), ROWS[name].path)
                sent[name] += result["requests"]
                runs[name].append(result)
        fixed = {}
        for name in FIXED_RATE_ROWS if fixed_rate else ():  # open loop: latency at a rate every row sustains
            url = f"http://{LOOPBACK}:{ports[name]}{BENCH_PATH}"
            auth = ["-H", f"Authorization: Bearer {token}"]
            clients = max(1, int(args.rate // 50))
            hey(url, rate=args.rate, workers=clients, duration=1, args=auth)  # warm
            fixed[name] = hey(url, rate=args.rate, workers=clients, duration=args.duration, args=auth)
            sent[name] += sum(fixed[name]["statuses"].values())
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
    return runs, sent, fixed


def ratios_of(median: dict[str, dict[str, float]], handler: dict[str, dict[str, float]]) -> dict[str, float]:
    rps = {name: stats["rps"] for name, stats in median.items()}
    return {
        "full_vs_noop": rps["full"] / rps["noop"],
        "full_http_vs_noop_grpc": rps["full_http"] / rps["noop"],
        "full_http_vs_noop_http": rps["full_http"] / rps["noop_http"],
        "noop_http_vs_noop_grpc": rps["noop_http"] / rps["noop"],
        "full_redis_vs_full": rps["full_redis"] / rps["full"],
        "full_http_redis_vs_full_http": rps["full_http_redis"] / rps["full_http"],
        "full_mcp_vs_noop": rps["full_mcp"] / rps["noop"],
        "mcp_http_vs_noop_http": rps["mcp_http"] / rps["noop_http"],
        "full_vs_plain": rps["full"] / rps["plain"],
        "full_http_vs_plain": rps["full_http"] / rps["plain"],
        "noop_vs_plain": rps["noop"] / rps["plain"],
        "full_w2_vs_full": rps["full_w2"] / rps["full"],
        "full_http_w2_vs_full_http": rps["full_http_w2"] / rps["full_http"],
        "noop_http_uds_vs_noop_http": rps["noop_http_uds"] / rps["noop_http"],
        "full_uds_vs_full": rps["full_uds"] / rps["full"],
        "full_http_uds_vs_full_http": rps["full_http_uds"] / rps["full_http"],
        "handler_metrics_on_vs_off_p50": handler["budgeted, metrics on"]["p50"] / handler["budgeted, log off"]["p50"],
        # a daily window beside the lifetime budget: what windowed budgets add to the one atomic step
        "handler_windowed_vs_budgeted_amortised": handler["windowed, amortised"]["mean"]
        / handler["budgeted, amortised"]["mean"],
        "handler_windowed_vs_budgeted_redis_amortised": handler["windowed redis, amortised"]["mean"]
        / handler["redis, amortised"]["mean"],
    }


def added_latency(fixed: dict[str, dict]) -> dict[str, dict[str, float]]:
    """What our check adds at a fixed rate: each full row minus the no-op server of its transport (every process
    hop costs wake-up latency on these VMs, so a no-op server is the baseline, not plain Envoy)."""
    pairs = {"grpc": ("full", "noop"), "http": ("full_http", "noop_http")}
    return {
        transport: {q: fixed[ours][f"{q}_ms"] - fixed[noop][f"{q}_ms"] for q in ("p50", "p99")}
        for transport, (ours, noop) in pairs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement (max 60)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the median is reported")
    parser.add_argument("--workers", type=int, default=1, help="satgate authz worker processes")
    parser.add_argument("--handler-iterations", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second of the fixed-rate run (hey)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    args.duration = min(args.duration, 60.0)
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required: apt-get install {tool}")

    with tempfile.TemporaryDirectory(prefix="satgate-bench-") as tmp:
        state = Path(tmp)
        redis = RedisServer(state / "redis").start()  # private instance, AOF off (a cache-style Redis)
        try:
            handler = asyncio.run(handler_microseconds(args.handler_iterations, state, redis.url))
            redis.cli("config", "resetstat")  # count only the checks sent through Envoy
            runs, requests_sent, fixed = run_through_envoy(args, state, redis)
            redis_round_trips = evalsha_calls(redis) / (requests_sent["full_redis"] + requests_sent["full_http_redis"])
        finally:
            redis.stop()

    median = {name: sorted(r, key=lambda x: x["rps"])[len(r) // 2] for name, r in runs.items()}
    report = {
        "handler_us": handler,
        "through_envoy": median,
        "ratios": ratios_of(median, handler),
        "redis_round_trips_per_check": redis_round_trips,
        "fixed_rate": {"rate": args.rate, "rows": fixed, "added_ms": added_latency(fixed)},
        "setup": {
            "duration_s": args.duration,
            "connections": args.connections,
            "rounds": args.rounds,
            "authz_workers": args.workers,
            "envoy_concurrency": 1,
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print("in-process Check handler (warm token cache, response built; budgeted = ledger debit):")
    for label, stats in handler.items():
        print(f"  {label:20s} mean {stats['mean']:6.1f} µs   p50 {stats['p50']:6.1f} µs   p99 {stats['p99']:6.1f} µs")
    print(
        f"\nthrough one Envoy (wrk, {args.connections} connections,"
        f" {args.duration:.0f}s x {args.rounds} rounds, median):"
    )
    for name, stats in median.items():
        print(
            f"  {name:10s} {stats['rps']:9.0f} rps   p50 {stats['p50_ms']:6.2f} ms   p99 {stats['p99_ms']:6.2f} ms"
            f"   non-2xx {stats['non_2xx']}"
        )
    for name, stats in median.items():
        if stats["non_2xx"]:
            print(f"  WARNING: {name} answered {stats['non_2xx']} non-2xx: its figure measures refusals, not checks")
    ratios = report["ratios"]
    targets = {
        "full_vs_noop": ">= 0.85",
        "full_http_vs_noop_grpc": ">= 2.0",
        "full_http_vs_noop_http": ">= 0.8",
        "full_redis_vs_full": ">= 0.85",
        "full_http_redis_vs_full_http": ">= 0.85",
    }
    print()
    for name, value in ratios.items():
        target = f"   (target {targets[name]})" if name in targets else ""
        print(f"  {name:32s} {value:5.2f}{target}")
    print(f"\nfixed rate ({args.rate:g} rps, hey, {args.duration:g}s per row):")
    for name, run in fixed.items():
        print(f"  {name:10s} p50 {run['p50_ms']:6.2f} ms   p99 {run['p99_ms']:6.2f} ms   {run['statuses']}")
    for transport, added in report["fixed_rate"]["added_ms"].items():
        print(
            f"  added by the check ({transport}, minus its no-op): p50 {added['p50']:+.2f} ms"
            f"   p99 {added['p99']:+.2f} ms (target p99 <= 2 ms)"
        )
    print(f"  Redis round trips per check = {redis_round_trips:.3f} EVALSHA (target 1)")
    print(
        f"  warm handler = {handler['budgeted, amortised']['mean']:.1f} µs per check with a debit (amortised over"
        f" {CONCURRENT} in flight; target <= 25), {handler['unbudgeted, log off']['p50']:.1f} µs p50 without"
        " (target <= 12)"
    )


if __name__ == "__main__":
    main()
