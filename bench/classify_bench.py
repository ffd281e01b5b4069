"""News classifier throughput: the labelled items (development and held-out sets) classified one by one.

Each run classifies every labelled item `--passes` times in a fresh interpreter, after one warm-up pass (the
lexicon, the catalog and the language model are loaded once per process, as in `mews news classify`). Prints
items/s by CPU time of the one thread that classifies, which is items/s per core, and by wall time, as medians
of `--runs`. With `--against REV` the same items are first classified by the code of an earlier commit (extracted
with `git archive`), the anchor, and the ratio is printed.

Run: .venv/bin/python bench/classify_bench.py [--runs 3] [--passes 5] [--against 1d59f38]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.trees import extract  # noqa: E402

FIXTURES = [
    ROOT / "tests" / "fixtures" / "news_labelled.jsonl",
    *sorted((ROOT / "tests" / "fixtures").glob("news_heldout*.jsonl")),
]


def load_items() -> list[dict]:
    """Every labelled item of the working tree's fixtures: text, title, publication date."""
    items = []
    for path in FIXTURES:
        if path.exists():
            items += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return items


def measure(passes: int) -> dict:
    """Classify the items `passes` times with the code tree on sys.path (after one warm-up pass)."""
    from services.ingest.classify import classify_item

    items = load_items()
    args = [(i["text"], i.get("title") or "", date.fromisoformat(i["published"])) for i in items]
    relevant = sum(classify_item(text, title=title, published=day).relevant for text, title, day in args)
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(passes):
        for text, title, day in args:
            classify_item(text, title=title, published=day)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    done = passes * len(args)
    return {"items": len(args), "relevant": relevant, "per_core": done / cpu, "per_wall": done / wall}


def run_tree(tree: Path, runs: int, passes: int) -> list[dict]:
    """`runs` fresh interpreters on `tree`, each printing its figures as JSON."""
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--json", "--root", str(tree), "--passes", str(passes)],
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        )
        results.append(json.loads(out.stdout.splitlines()[-1]))
    return results


def describe(label: str, results: list[dict]) -> str:
    per_core = statistics.median(r["per_core"] for r in results)
    per_wall = statistics.median(r["per_wall"] for r in results)
    runs = ", ".join(f"{r['per_core']:.0f}" for r in results)
    return (
        f"{label}: {per_core:.0f} items/s per core (runs: {runs}), {per_wall:.0f} items/s wall;"
        f" {results[0]['relevant']} of {results[0]['items']} items relevant"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--passes", type=int, default=5, help="passes over the items per run (default 5)")
    parser.add_argument("--against", metavar="REV", help="also classify with the code of this commit, first")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        sys.path.insert(0, str(args.root))
        print(json.dumps(measure(args.passes)))
        return
    print(f"workload: {len(load_items())} labelled news items x {args.passes} passes, {args.runs} runs")
    before = None
    if args.against:
        with tempfile.TemporaryDirectory() as tmp:
            extract(args.against, Path(tmp))
            before = run_tree(Path(tmp), args.runs, args.passes)
        print(describe(f"at {args.against}", before))
    after = run_tree(ROOT, args.runs, args.passes)
    print(describe("working tree", after))
    if before:
        ratio = statistics.median(r["per_core"] for r in after) / statistics.median(r["per_core"] for r in before)
        print(f"working tree / {args.against}: {ratio:.2f}x items/s per core")


if __name__ == "__main__":
    main()
