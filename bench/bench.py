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
import copy
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
from satgate_dev.devstack import LOOPBACK, RedisServer, free_port, grpc_serving  # noqa: E402

AUTHZ_FILTER = "envoy.filters.http.ext_authz"
BENCH_PATH = "/v1/items"


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


# ---------------------------------------------------------------- Envoy with three listeners
# listener → the ext_authz cluster it calls (None: ext_authz removed)
LISTENERS: dict[str, str | None] = {
    "plain": None,
    "noop": "noop_authz",
    "full": "satgate_authz",
    "full_redis": "satgate_authz_redis",
    "full_mcp": "satgate_authz",  # the SQLite server, on an MCP route: JSON-RPC body buffered and parsed
}
MCP_BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"x"}}}'


def bench_envoy_config(ports: dict[str, int], cluster_ports: dict[str, int], admin_port: int) -> dict:
    """One listener per row, each a copy of the shipped one, answering with direct_response."""
    doc = yaml.safe_load(envoy_config.SHIPPED_CONFIG.read_text())
    shipped = doc["static_resources"]["listeners"][0]
    listeners = []
    for name, port in ports.items():
        listener = copy.deepcopy(shipped)
        listener["name"] = name
        listener["address"] = {"socket_address": {"address": LOOPBACK, "port_value": port}}
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        hcm.pop("access_log", None)  # stdout logging would measure the terminal, not authz
        hcm["stat_prefix"] = name
        vhost = hcm["route_config"]["virtual_hosts"][0]
        v1 = next(r for r in vhost["routes"] if r["match"].get("prefix") == "/v1/")
        v1.pop("route")
        v1["direct_response"] = {"status": 200, "body": {"inline_string": "ok"}}
        vhost["routes"] = [v1]
        cluster = LISTENERS[name]
        if cluster is None:
            hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != AUTHZ_FILTER]
            v1.pop("typed_per_filter_config")
        else:
            authz = next(f for f in hcm["http_filters"] if f["name"] == AUTHZ_FILTER)
            authz["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] = cluster
        if name == "full_mcp":
            settings = v1["typed_per_filter_config"][AUTHZ_FILTER]["check_settings"]
            settings["context_extensions"] = {"mcp": "true"}
            settings["with_request_body"] = {
                "max_request_bytes": 65536,
                "allow_partial_message": False,
                "pack_as_bytes": True,
            }
        listeners.append(listener)
    doc["static_resources"]["listeners"] = listeners
    template = next(c for c in doc["static_resources"]["clusters"] if c["name"] == "satgate_authz")
    clusters = []
    for name, port in cluster_ports.items():
        cluster = copy.deepcopy(template)
        cluster["name"] = cluster["load_assignment"]["cluster_name"] = name
        cluster["type"] = "STATIC"
        address = {"socket_address": {"address": LOOPBACK, "port_value": port}}
        cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": [{"endpoint": {"address": address}}]}]
        clusters.append(cluster)
    doc["static_resources"]["clusters"] = clusters
    doc["admin"]["address"] = {"socket_address": {"address": LOOPBACK, "port_value": admin_port}}
    return doc


def wrk(port: int, token: str, duration: float, connections: int, script: Path | None = None) -> dict[str, float]:
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
            f"http://{LOOPBACK}:{port}{BENCH_PATH}",
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


def run_through_envoy(args: argparse.Namespace, state: Path, redis: RedisServer):
    keyring_path = state / "keyring.json"
    keyring, _ = load_or_create_keyring(keyring_path)
    write_keyring(keyring_path, keyring)
    # mcp:* too: tool calls require mcp:tool:<name>
    token = mint(keyring, "bench", [("scope", "api:*,mcp:*"), ("budget", str(10**15))]).token
    cluster_ports = {name: free_port() for name in ("noop_authz", "satgate_authz", "satgate_authz_redis")}
    ports = {name: free_port() for name in LISTENERS}
    admin_port = free_port()
    procs = []
    for cluster, ledger in (("satgate_authz", f"sqlite:///{state}/ledger.db"), ("satgate_authz_redis", redis.url)):
        init_ledger_blocking(ledger)
        config = state / f"{cluster}.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "keyring": str(keyring_path),
                    "ledger": ledger,
                    "log_level": "warning",
                    "authz": {"listen": f"{LOOPBACK}:{cluster_ports[cluster]}", "workers": args.workers},
                }
            )
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "satgate_cli", "authz", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    noop = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("noop_authz.py")), f"{LOOPBACK}:{cluster_ports['noop_authz']}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    procs.append(noop)
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
        for cluster in ("satgate_authz", "satgate_authz_redis"):
            wait(lambda c=cluster: grpc_serving(f"{LOOPBACK}:{cluster_ports[c]}"), cluster)
        assert noop.stdout.readline().strip() == "ready", "noop ext_authz server did not start"
        time.sleep(1.0)
        post_mcp = state / "mcp.lua"
        post_mcp.write_text(
            f"wrk.method = 'POST'\nwrk.body = '{MCP_BODY}'\nwrk.headers['Content-Type'] = 'application/json'\n"
        )
        scripts = {"full_mcp": post_mcp}
        for name, port in ports.items():  # warm every path once
            sent[name] += wrk(port, token, 1.0, 4, scripts.get(name))["requests"]
        for _ in range(args.rounds):
            for name, port in ports.items():
                result = wrk(port, token, args.duration, args.connections, scripts.get(name))
                sent[name] += result["requests"]
                runs[name].append(result)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
    return runs, sent


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
            redis_round_trips = evalsha_calls(redis) / requests_sent["full_redis"]
        finally:
            redis.stop()

    median = {name: sorted(r, key=lambda x: x["rps"])[len(r) // 2] for name, r in runs.items()}
    report = {
        "handler_us": handler,
        "through_envoy": median,
        "ratios": {
            "full_vs_noop": median["full"]["rps"] / median["noop"]["rps"],
            "full_redis_vs_noop": median["full_redis"]["rps"] / median["noop"]["rps"],
            "full_mcp_vs_noop": median["full_mcp"]["rps"] / median["noop"]["rps"],
            "full_vs_plain": median["full"]["rps"] / median["plain"]["rps"],
            "noop_vs_plain": median["noop"]["rps"] / median["plain"]["rps"],
            "handler_metrics_on_vs_off_p50": handler["budgeted, metrics on"]["p50"]
            / handler["budgeted, log off"]["p50"],
        },
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
    print(f"\n  full / noop  = {ratios['full_vs_noop']:.2f}   (target >= 0.85)")
    print(f"  full_redis / noop = {ratios['full_redis_vs_noop']:.2f}   (target >= 0.75)")
    print(f"  full_mcp / noop   = {ratios['full_mcp_vs_noop']:.2f}   (JSON-RPC body buffered and parsed)")
    print(f"  Redis round trips per check = {redis_round_trips:.3f} EVALSHA (target 1)")
    print(f"  full / plain = {ratios['full_vs_plain']:.2f}")
    print(f"  noop / plain = {ratios['noop_vs_plain']:.2f}")
    print(
        f"  warm handler = {handler['budgeted, log off']['p50']:.1f} µs p50 with a debit,"
        f" {handler['unbudgeted, log off']['p50']:.1f} µs without (target <= 25 µs)"
    )
    print(f"  handler with Prometheus metrics / without = {ratios['handler_metrics_on_vs_off_p50']:.2f} (p50)")


if __name__ == "__main__":
    main()
