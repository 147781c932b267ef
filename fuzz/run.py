"""`./dev fuzz [--seconds N] [--only NAME]`: every harness of fuzz/harnesses.py under atheris (libFuzzer,
coverage-guided) for a bounded time each, in its own process, then a table of executions, coverage and findings.
A finding is saved under fuzz/findings/ (libFuzzer's crash file); add it to fuzz/corpus/<harness>/ as a
regression input once fixed — tests/test_fuzz_harnesses.py replays every corpus file on every test run."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = HERE / "corpus"
FINDINGS = HERE / "findings"


def _one(name: str, seconds: int) -> None:
    """In the child: instrument the product's modules as they load, then fuzz one harness."""
    import atheris  # noqa: PLC0415 - only the child needs it

    sys.path[:0] = [str(ROOT), str(HERE)]
    with atheris.instrument_imports(include=["satgate", "mint_server", "harnesses"]):
        import harnesses  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix=f"satgate-fuzz-{name}-"))  # the grown corpus, seeded from ours
    seeds = CORPUS / name
    FINDINGS.mkdir(exist_ok=True)
    argv = [
        sys.argv[0],
        str(work),
        *([str(seeds)] if seeds.is_dir() else []),
        f"-max_total_time={seconds}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={FINDINGS}/{name}-",
    ]
    atheris.Setup(argv, harnesses.HARNESSES[name])
    atheris.Fuzz()


def _stats(output: str) -> tuple[int, int, bool]:
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    coverage = re.findall(r"\bcov: (\d+)", output)
    found = "==ERROR" in output or "Uncaught Python exception" in output or "deadly signal" in output
    return int(executed[1]) if executed else 0, int(coverage[-1]) if coverage else 0, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="per harness (at most 3600)")
    parser.add_argument("--only", action="append", help="a harness by name (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = max(1, min(args.seconds, 3600))
    if args.child:
        _one(args.child, seconds)
        return
    sys.path[:0] = [str(ROOT), str(HERE)]
    from harnesses import HARNESSES  # noqa: PLC0415

    names = args.only or list(HARNESSES)
    unknown = sorted(set(names) - set(HARNESSES))
    if unknown:
        sys.exit(f"unknown harness {', '.join(unknown)}; the harnesses: {', '.join(HARNESSES)}")
    print(f"{'harness':20s} {'executions':>12s} {'exec/s':>9s} {'coverage':>9s}  result")
    failed = False
    for name in names:
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - this very script, in a child
            [sys.executable, __file__, "--child", name, "--seconds", str(seconds)],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=False,
        )
        elapsed = time.monotonic() - started
        executed, coverage, found = _stats(done.stdout + done.stderr)
        result = "FINDING (see fuzz/findings/)" if found or done.returncode not in (0,) else "clean"
        failed |= result != "clean"
        print(f"{name:20s} {executed:12,d} {executed / max(elapsed, 1e-9):9,.0f} {coverage:9,d}  {result}")
        if result != "clean":
            print("\n".join((done.stdout + done.stderr).splitlines()[-30:]), file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
