"""Backtest throughput: ten years of daily prices for fifty materials (seeded), replayed through the engine.

Prints the median wall and CPU time over a few runs and events per second. With `--against REV` it first runs
the same workload on the code of an earlier commit (extracted with `git archive` into a temporary folder) and
then on the working tree, one after the other, and prints both, the speed-up and whether the two breach reports
are the same; CPU time is the steadier figure on a shared machine. Like `mews backtest`, it freezes what
was read (`gc.freeze()`) before replaying, in both trees. `--materials` and `--years` size the
workload (business days, one random walk with jumps per material, the same seed: the same events every time).

Run: .venv/bin/python bench/backtest_bench.py [--runs 3] [--against 3389b4b] [--materials 50] [--years 10]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.trees import extract  # noqa: E402

MATERIALS = 50
YEARS = 10


def generate(seed: int = 20240601, materials: int = MATERIALS, years: int = YEARS):  # -> ReadReport of the tree
    """Business-day prices as geometric Brownian motion with occasional jumps, one series per material."""
    from services.scoring.backtest import ReadReport, _input
    from shared.events import PriceObserved

    rng = random.Random(seed)
    report = ReadReport()
    start = datetime(2014, 1, 1, tzinfo=UTC)
    days = [start + timedelta(days=d) for d in range(years * 365) if (start + timedelta(days=d)).weekday() < 5]
    for m in range(materials):
        material = f"material-{m:02d}"
        price = rng.uniform(5, 5000)
        sigma = rng.uniform(0.15, 0.6) / math.sqrt(252)
        for day in days:
            jump = rng.gauss(0, 8 * sigma) if rng.random() < 0.002 else 0.0
            price *= math.exp(rng.gauss(0, sigma) + jump)
            report.inputs.append(
                _input(
                    PriceObserved(
                        material=material,
                        source="bench",
                        observed_at=day,
                        price=price,
                        currency="USD",
                        unit="t",
                        series="spot",
                    )
                )
            )
    return report


def measure(runs: int, config_path: Path | None = None, materials: int = MATERIALS, years: int = YEARS) -> dict:
    """Generate the workload and replay it `runs` times with the code tree on sys.path; the figures."""
    from services.scoring.backtest import merge_inputs, replay, write_report
    from services.scoring.config import load_config

    t0 = time.perf_counter()
    report = generate(materials=materials, years=years)
    generated = time.perf_counter() - t0
    config = load_config(config_path)
    gc.freeze()  # as `mews backtest` does once its inputs are read
    walls, cpus = [], []
    digest, breaches = "", 0
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        result = replay(merge_inputs([report]), config)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        out = io.StringIO()
        breaches = write_report(result.breaches, out)
        digest = hashlib.sha256(out.getvalue().encode()).hexdigest()[:12]
    return {
        "events": len(report.inputs),
        "generated_s": generated,
        "walls": walls,
        "cpus": cpus,
        "breaches": breaches,
        "report_sha": digest,
    }


def describe(label: str, m: dict) -> str:
    wall, cpu = statistics.median(m["walls"]), statistics.median(m["cpus"])
    return (
        f"{label}: replay (merge + engine) over {len(m['walls'])} runs: median wall {wall:.2f} s "
        f"({m['events'] / wall:,.0f} events/s, {wall / m['events'] * 1e6:.0f} us/event), median CPU "
        f"{cpu:.2f} s ({m['events'] / cpu:,.0f} events per CPU second); "
        f"runs: {', '.join(f'{w:.2f}' for w in m['walls'])} s; {m['breaches']} breach events, "
        f"report sha256 {m['report_sha']}"
    )


def run_tree(root: Path, runs: int, config: Path | None, materials: int, years: int) -> dict:
    """The figures of the code tree at `root`, measured in a fresh interpreter."""
    extra = ["--config", str(config.resolve())] if config else []
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--runs",
            str(runs),
            "--json",
            "--root",
            str(root),
            "--materials",
            str(materials),
            "--years",
            str(years),
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also measure the code of this commit, first")
    parser.add_argument("--config", type=Path, help="scoring configuration for both (default: each tree's own)")
    parser.add_argument("--materials", type=int, default=MATERIALS, help=f"materials priced (default {MATERIALS})")
    parser.add_argument("--years", type=int, default=YEARS, help=f"years of business days (default {YEARS})")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        sys.path.insert(0, str(args.root))
        print(json.dumps(measure(args.runs, args.config, args.materials, args.years)))
        return
    print(f"workload: {args.materials} materials x {args.years} years of business days of prices, seeded")
    if args.against:
        with tempfile.TemporaryDirectory() as tmp:
            extract(args.against, Path(tmp))
            before = run_tree(Path(tmp), args.runs, args.config, args.materials, args.years)
        print(describe(f"at {args.against}", before))
    after = run_tree(ROOT, args.runs, args.config, args.materials, args.years)
    print(describe("working tree", after))
    if args.against:
        speedup = statistics.median(before["walls"]) / statistics.median(after["walls"])
        cpu_speedup = statistics.median(before["cpus"]) / statistics.median(after["cpus"])
        same = "the same report" if before["report_sha"] == after["report_sha"] else "DIFFERENT reports"
        print(f"speed-up: {speedup:.2f}x wall, {cpu_speedup:.2f}x CPU; {same} ({after['breaches']} breach rows)")


if __name__ == "__main__":
    main()
