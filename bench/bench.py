"""SatGate benchmark: one run, one Envoy, three listeners built from the shipped config.

  plain  - Envoy alone (ext_authz filter removed)
  noop   - ext_authz to a grpc.aio server that allows everything (same runtime as ours)
  full   - ext_authz to the satgate authz server: verify, caveats, SQLite debit, headers
  full_redis - the same with the Redis ledger (a private redis-server the bench starts)

Routes answer with direct_response so the upstream never limits the figures. Also measures the check
handler in process (µs per Check, no network). Reports ratios; asserts nothing.

    ./dev bench [--duration 8] [--connections 32] [--rounds 2] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import structlog
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from satgate.keyring import Keyring, load_or_create_keyring, write_keyring  # noqa: E402
from satgate.ledger.initialise import init_ledger_blocking  # noqa: E402
from satgate.tokens.mint import mint  # noqa: E402
from satgate_dev import envoy_config  # noqa: E402
from satgate_dev.devstack import LOOPBACK, _http_ok, free_port, grpc_serving  # noqa: E402
from satgate_dev.redis_server import RedisServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from envoy_rows import BENCH_PATH, HTTP_ROUTES, MCP_BODY, ROWS, bench_envoy_config  # noqa: E402


# ---------------------------------------------------------------- in-process handler
async def handler_microseconds(iterations: int, state: Path, redis_url: str) -> dict[str, dict[str, float]]:
    """µs per Check, no network. An unbudgeted token takes the real path without a write transaction
    (a revocation read only), so the two rows separate the SQLite debit from everything else."""
    from envoy.service.auth.v3.external_auth_pb2 import CheckRequest  # noqa: PLC0415

    from authz_server.check import CheckPipeline, CheckSettings  # noqa: PLC0415
    from authz_server.metrics import CheckMetrics  # noqa: PLC0415
    from satgate.ledger.url import open_ledger  # noqa: PLC0415
    from satgate.routes import RouteTable  # noqa: PLC0415
    from satgate.tokens.verify import TokenVerifier  # noqa: PLC0415

    keyring = Keyring.generate()
    base = [("expires", "2099-01-01T00:00:00Z"), ("scope", "api:*")]

    def request(token: str) -> CheckRequest:
        req = CheckRequest()
        http = req.attributes.request.http
        http.method, http.path, http.host = "GET", BENCH_PATH, "api.example.com"
        http.headers.update(
            {
                "authorization": f"Bearer {token}",
                "x-request-id": str(uuid.uuid4()),
                "user-agent": "bench",
                "accept": "*/*",
                ":authority": "api.example.com",
            }
        )
        req.attributes.source.address.socket_address.address = "127.0.0.1"
        req.attributes.context_extensions.update({"scope": "api:read", "cost": "1"})
        return req

    structlog.configure(  # decision logs to a file, as a deployment would ship them
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=(state / "decisions.log").open("w")),
        cache_logger_on_first_use=True,  # as satgate.logs configures the servers
    )
    budgeted = [*base, ("budget", str(10**15))]
    sqlite = f"sqlite:///{state}/handler-{{}}.db"
    cases = {
        "unbudgeted, log off": (base, "none", sqlite, False),
        "budgeted, log off": (budgeted, "none", sqlite, False),
        "budgeted, metrics on": (budgeted, "none", sqlite, True),
        "budgeted, log on": (budgeted, "all", sqlite, False),
        "budgeted, redis": (budgeted, "none", redis_url, False),
    }
    results = {}
    for label, (caveats, log_mode, ledger_url, with_metrics) in cases.items():
        token = mint(keyring, "bench", caveats).token
        init_ledger_blocking(ledger_url.format(len(results)))
        ledger = open_ledger(ledger_url.format(len(results)))
        pipeline = CheckPipeline(
            verifier=TokenVerifier(keyring),
            ledger=ledger,
            routes=RouteTable(),
            settings=CheckSettings(decision_log=log_mode),
            metrics=CheckMetrics() if with_metrics else None,
        )
        requests = [request(token) for _ in range(iterations)]
        for req in requests[:500]:  # warm: token cache, SQLite pages, code paths
            await pipeline.check(req)
        samples = []
        for req in requests[500:]:
            started = time.perf_counter_ns()
            response = await pipeline.check(req)
            samples.append((time.perf_counter_ns() - started) / 1000)
            assert response.HasField("ok_response")
        await ledger.close()
        samples.sort()
        results[label] = {
            "mean": statistics.fmean(samples),
            "p50": samples[len(samples) // 2],
            "p99": samples[int(len(samples) * 0.99)],
        }
    return results


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
    return grpc_serving(address) if transport == "grpc" else _http_ok(f"http://{address}/readyz", status=204)


def run_through_envoy(args: argparse.Namespace, state: Path, redis: RedisServer):
    keyring_path = state / "keyring.json"
    keyring, _ = load_or_create_keyring(keyring_path)
    write_keyring(keyring_path, keyring)
    # mcp:* too: tool calls require mcp:tool:<name>
    token = mint(keyring, "bench", [("scope", "api:*,mcp:*"), ("budget", str(10**15))]).token
    cluster_ports = {row.cluster: free_port() for row in ROWS.values() if row.cluster}
    ports = {name: free_port() for name in ROWS}
    admin_port = free_port()
    procs = []
    servers = {
        "satgate_authz": ("grpc", f"sqlite:///{state}/ledger.db"),
        "satgate_authz_redis": ("grpc", redis.url),
        "satgate_authz_http": ("http", f"sqlite:///{state}/ledger-http.db"),
        "satgate_authz_http_redis": ("http", redis.url),
    }
    for cluster, (transport, ledger) in servers.items():
        init_ledger_blocking(ledger)
        listen = f"{LOOPBACK}:{cluster_ports[cluster]}"
        authz: dict = {"transport": transport, "workers": args.workers}
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
    }
    for cluster, script in noops.items():
        argv = [sys.executable, str(script), f"{LOOPBACK}:{cluster_ports[cluster]}"]
        noop = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        procs.append(noop)
        assert noop.stdout is not None
        assert noop.stdout.readline().strip() == "ready", f"{cluster} did not start"
    envoy_yaml = envoy_config.write_rendered(state / "envoy.yaml", bench_envoy_config(ports, cluster_ports, admin_port))
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
        for cluster, (transport, _ledger) in servers.items():
            wait(lambda c=cluster, t=transport: authz_ready(t, f"{LOOPBACK}:{cluster_ports[c]}"), cluster)
        wait(lambda: _http_ok(f"http://{LOOPBACK}:{cluster_ports['noop_http']}/readyz", status=204), "noop_http")
        time.sleep(1.0)
        post_mcp = state / "mcp.lua"
        post_mcp.write_text(
            f"wrk.method = 'POST'\nwrk.body = '{MCP_BODY}'\nwrk.headers['Content-Type'] = 'application/json'\n"
        )
        scripts = {name: post_mcp for name, row in ROWS.items() if row.mcp}
        for name, port in ports.items():  # warm every path once
            sent[name] += wrk(port, token, 1.0, 4, scripts.get(name), ROWS[name].path)["requests"]
        for _ in range(args.rounds):
            for name, port in ports.items():
                result = wrk(port, token, args.duration, args.connections, scripts.get(name), ROWS[name].path)
                sent[name] += result["requests"]
                runs[name].append(result)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
    return runs, sent


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
        "handler_metrics_on_vs_off_p50": handler["budgeted, metrics on"]["p50"] / handler["budgeted, log off"]["p50"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement (max 60)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the median is reported")
    parser.add_argument("--workers", type=int, default=1, help="satgate authz worker processes")
    parser.add_argument("--handler-iterations", type=int, default=20000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    args.duration = min(args.duration, 60.0)
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: apt-get install wrk")

    with tempfile.TemporaryDirectory(prefix="satgate-bench-") as tmp:
        state = Path(tmp)
        redis = RedisServer(state / "redis").start()  # private instance, AOF off (a cache-style Redis)
        try:
            handler = asyncio.run(handler_microseconds(args.handler_iterations, state, redis.url))
            redis.cli("config", "resetstat")  # count only the checks sent through Envoy
            runs, requests_sent = run_through_envoy(args, state, redis)
            redis_round_trips = evalsha_calls(redis) / (requests_sent["full_redis"] + requests_sent["full_http_redis"])
        finally:
            redis.stop()

    median = {name: sorted(r, key=lambda x: x["rps"])[len(r) // 2] for name, r in runs.items()}
    report = {
        "handler_us": handler,
        "through_envoy": median,
        "ratios": ratios_of(median, handler),
        "redis_round_trips_per_check": redis_round_trips,
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
    print(f"  Redis round trips per check = {redis_round_trips:.3f} EVALSHA (target 1)")
    print(
        f"  warm handler = {handler['budgeted, log off']['p50']:.1f} µs p50 with a debit,"
        f" {handler['unbudgeted, log off']['p50']:.1f} µs without (target <= 25 µs)"
    )


if __name__ == "__main__":
    main()
