"""Does a second authz worker cost latency? Two workers share the SQLite ledger through WAL; a debit waits for the
write lock in the writer thread, never on the event loop, so at the same fixed rate two workers should answer no
slower than one (issue: "workers=2 p99 no worse than workers=1").

The whole stack as `satgate up` runs it (shipped envoy.yaml, SQLite ledger, demo upstream); hey sends GET /v1/items
with a budgeted token at a fixed rate, first to a stack with one authz worker, then to one with two. Reports p50/p99
of each and the ratio two / one, measured in one run.

    ./dev bench --workers [--rate 400] [--duration 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from floods import hey  # noqa: E402

from satgate.keyring import load_keyring  # noqa: E402
from satgate.tokens.mint import mint  # noqa: E402
from satgate_dev.devstack import Stack, StackPorts  # noqa: E402


def measure(workers: int, rate: float, duration: float, state: Path) -> dict:
    overrides = {"log_level": "warning", "authz": {"usage": {"enabled": False}}}
    with Stack(state / f"w{workers}", StackPorts.free(), authz_workers=workers, config_overrides=overrides) as stack:
        token = mint(
            load_keyring(stack.state_dir / "keyring.json"), "demo", [("scope", "api:*"), ("budget", "10000000")]
        )
        url, args = f"{stack.url}/v1/items", ["-H", f"Authorization: Bearer {token.token}"]
        clients = max(1, int(rate // 25))
        hey(url, rate=rate, workers=clients, duration=2, args=args)  # warm up
        return hey(url, rate=rate, workers=clients, duration=duration, args=args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=400.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run (max 60)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.duration = min(max(args.duration, 2.0), 60.0)
    if shutil.which("hey") is None:
        sys.exit("hey is required: apt-get install hey")
    with tempfile.TemporaryDirectory(prefix="satgate-workers-") as tmp:
        runs = {workers: measure(workers, args.rate, args.duration, Path(tmp)) for workers in (1, 2)}
    report = {
        "runs": runs,
        "p50_two_vs_one": runs[2]["p50_ms"] / runs[1]["p50_ms"],
        "p99_two_vs_one": runs[2]["p99_ms"] / runs[1]["p99_ms"],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"GET /v1/items at {args.rate:g}/s for {args.duration:g}s (hey), Envoy + authz on SQLite, budgeted token")
    for workers, run in runs.items():
        print(f"  workers={workers}  p50 {run['p50_ms']:6.2f} ms   p99 {run['p99_ms']:6.2f} ms   {run['statuses']}")
    print(f"  p50 two / one = {report['p50_two_vs_one']:.2f}   p99 two / one = {report['p99_two_vs_one']:.2f}")
    print("  target: p99 two / one <= 1")


if __name__ == "__main__":
    main()
