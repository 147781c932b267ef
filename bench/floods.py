"""Unauthenticated floods beside a victim: does a stranger's traffic slow a paying client down?

The whole stack as `satgate up` runs it (shipped envoy.yaml, authz on SQLite, demo upstream). A victim calls
/v1/items at a fixed rate with a valid token (hey); it runs alone, then beside each flood of the security
review, then beside both at once:

  big_bodies     1 MiB JSON bodies on the MCP route without a token (~3/s)
  forged_16k     a forged 16 KiB macaroon (1 015 caveats, wrong key) (~50/s)
  forged_at_cap  a forged macaroon at the caps (128 caveats, under 8 KiB), repeated (~50/s)

Reports the victim's p50/p99 under each flood as a ratio to its unloaded run, and its non-200 answers
(target: within 2x, no 503). Bounded: every run is `--duration` seconds at fixed rates.

    ./dev bench --floods [--duration 10] [--victim-rate 40]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from satgate.keyring import Keyring, load_keyring  # noqa: E402
from satgate.tokens import wire  # noqa: E402
from satgate.tokens.mint import mint  # noqa: E402
from satgate_dev.devstack import Stack, StackPorts  # noqa: E402

_LATENCY_RE = re.compile(r"(\d+)% in ([\d.]+) secs")
_STATUS_RE = re.compile(r"\[(\d+)\]\s+(\d+) responses")


def hey(url: str, *, rate: float, workers: int, duration: float, args: list[str]) -> dict:
    """A fixed-rate run: `workers` each sending `rate / workers` requests per second."""
    result = subprocess.run(
        ["hey", "-z", f"{int(duration)}s", "-c", str(workers), "-q", f"{rate / workers:g}", "-t", "5", *args, url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    )
    latency = {int(p): float(s) * 1000 for p, s in _LATENCY_RE.findall(result.stdout)}
    statuses = {int(code): int(count) for code, count in _STATUS_RE.findall(result.stdout)}
    return {"p50_ms": latency.get(50), "p99_ms": latency.get(99), "statuses": statuses}


def forged(caveats: int, value_chars: int) -> str:
    """A token of tenant demo under a stranger's key: its signature can never verify."""
    return mint(Keyring.generate(), "demo", [("label", "x" * value_chars)] * (caveats - 1)).token  # + the seal


def measure(victim: tuple[str, list[str]], floods: dict, rate: float, duration: float) -> dict[str, dict]:
    """The victim alone, beside each flood, beside all of them, and alone again (the run-to-run noise)."""
    url, args = victim
    workers = max(1, int(rate // 10))

    def run_victim(seconds: float) -> dict:
        return hey(url, rate=rate, workers=workers, duration=seconds, args=args)

    run_victim(2)  # warm up
    runs = {"alone": run_victim(duration)}
    with ThreadPoolExecutor(max_workers=len(floods)) as pool:
        for name, chosen in [*((n, [n]) for n in floods), ("all_floods", list(floods))]:
            started = {
                flood: pool.submit(
                    hey, floods[flood][0], rate=floods[flood][1], workers=1, duration=duration, args=floods[flood][2]
                )
                for flood in chosen
            }
            runs[name] = run_victim(duration)
            runs[name]["floods"] = {flood: future.result()["statuses"] for flood, future in started.items()}
    runs["alone_again"] = run_victim(duration)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (max 60)")
    parser.add_argument("--victim-rate", type=float, default=40.0, help="victim requests per second")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.duration = min(max(args.duration, 2.0), 60.0)
    if shutil.which("hey") is None:
        sys.exit("hey is required: apt-get install hey")

    with tempfile.TemporaryDirectory(prefix="satgate-floods-") as tmp:
        state = Path(tmp)
        body = state / "big.json"
        body.write_text(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "pad": "x" * (1 << 20)})[: 1 << 20]
        )
        with Stack(state / "stack", StackPorts.free(), config_overrides={"log_level": "warning"}) as stack:
            keyring = load_keyring(stack.state_dir / "keyring.json")
            victim_token = mint(keyring, "demo", [("scope", "api:*"), ("budget", str(10**12))]).token
            big_16k, at_cap = forged(1015, 1), forged(wire.MAX_CAVEATS, 30)
            assert len(big_16k) > 16_000
            assert len(at_cap) <= wire.MAX_TOKEN_CHARS
            floods = {
                "big_bodies": (f"{stack.url}/mcp", 3.0, ["-m", "POST", "-T", "application/json", "-D", str(body)]),
                "forged_16k": (f"{stack.url}/v1/items", 50.0, ["-H", f"Authorization: Bearer {big_16k}"]),
                "forged_at_cap": (f"{stack.url}/v1/items", 50.0, ["-H", f"Authorization: Bearer {at_cap}"]),
            }
            victim = (f"{stack.url}/v1/items", ["-H", f"Authorization: Bearer {victim_token}"])
            runs = measure(victim, floods, args.victim_rate, args.duration)

    alone = runs["alone"]
    report = {
        name: {
            **run,
            "p50_vs_alone": run["p50_ms"] / alone["p50_ms"],
            "p99_vs_alone": run["p99_ms"] / alone["p99_ms"],
            "victim_non_200": sum(c for s, c in run["statuses"].items() if s != 200),
            "victim_503": run["statuses"].get(503, 0),
        }
        for name, run in runs.items()
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"victim: GET /v1/items at {args.victim_rate:g}/s for {args.duration:g}s (hey), through Envoy + authz (SQLite)"
    )
    for name, row in report.items():
        print(
            f"  {name:14s} p50 {row['p50_ms']:7.2f} ms ({row['p50_vs_alone']:.2f}x)"
            f"   p99 {row['p99_ms']:7.2f} ms ({row['p99_vs_alone']:.2f}x)"
            f"   victim non-200 {row['victim_non_200']} (503: {row['victim_503']})"
            + (f"   floods answered {row['floods']}" if "floods" in row else "")
        )
    print("  target: every flood row within 2x of alone on p50 and p99, victim 503 = 0")


if __name__ == "__main__":
    main()
