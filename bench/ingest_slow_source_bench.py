"""A slow source beside a normal one: how long one poll takes to publish the normal source's document while a
source listed before it sends one byte a second.

Both sources are served on 127.0.0.1 (the poller runs with MEWS_INGEST_ALLOW_PRIVATE_SOURCES=true); the fetch
timeout is `--timeout` seconds and retries are off. Each tree polls in a fresh interpreter on the same broker.
The anchor is the same poll with the normal source alone. With `--against REV` the code of that commit is
measured first, then the working tree, in the same run; figures are medians over `--runs` runs.

Run: .venv/bin/python bench/ingest_slow_source_bench.py [--against 1d59f38] [--runs 3] [--slow-bytes 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.broker import kafka_broker  # noqa: E402
from bench.harness.trees import code_tree, describe_tree  # noqa: E402

PRICES = (ROOT / "tests" / "fixtures" / "ingest" / "prices.csv").read_bytes()

POLL = r"""
import asyncio, json, logging, sys, time
from pathlib import Path
logging.disable(logging.WARNING)
from services.ingest.config import parse_sources
from services.ingest.poll import open_ingestion, poll_once
from services.ingest.settings import IngestSettings

cfg = json.loads(sys.argv[1])
async def main():
    config = parse_sources(cfg["sources"], Path(cfg["state"]))
    async with open_ingestion(IngestSettings()) as ingestion:
        health = {}
        started = time.time()
        reports = await poll_once(config, ingestion, health)
        ended = time.time()
    print(json.dumps({"normal": health["normal"].last_success - started, "poll": ended - started,
                      "outcomes": {r.source: r.outcome for r in reports}}))
asyncio.run(main())
"""


def serve(slow_bytes: int) -> int:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's hook name)
            body = PRICES if self.path == "/prices.csv" else PRICES[:slow_bytes]
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            try:
                if self.path == "/prices.csv":
                    self.wfile.write(body)
                    return
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(1.0)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def sources(port: int, with_slow: bool) -> str:
    text = ""
    names = (["slow"] if with_slow else []) + ["normal"]
    for name in names:
        path = "/slow.csv" if name == "slow" else "/prices.csv"
        text += (
            f'[[source]]\nname = "{name}"\nkind = "csv_prices"\nurl = "http://127.0.0.1:{port}{path}"\n'
            f'currency = "USD"\nunit = "kg"\n'
        )
    return text


def poll(tree: Path, bootstrap: str, port: int, timeout: float, with_slow: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="mews-bench-ingest-") as state:
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MEWS_TOPIC_NAMESPACE": f"bench{uuid.uuid4().hex[:8]}",
            "MEWS_INGEST_STATE_DIR": state,
            "MEWS_INGEST_FETCH_TIMEOUT_S": str(timeout),
            "MEWS_INGEST_FETCH_RETRIES": "0",
            "MEWS_INGEST_ALLOW_PRIVATE_SOURCES": "true",
            "MEWS_LOG_LEVEL": "WARNING",
        }
        cfg = {"sources": sources(port, with_slow), "state": state}
        out = subprocess.run(
            [sys.executable, "-c", POLL, json.dumps(cfg)], cwd=tree, env=env, check=True, capture_output=True, text=True
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also measure the code of this commit, first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slow-bytes", type=int, default=30, help="bytes the slow source sends, one a second")
    parser.add_argument("--timeout", type=float, default=5.0, help="MEWS_INGEST_FETCH_TIMEOUT_S")
    args = parser.parse_args()
    port = serve(args.slow_bytes)
    figures: dict[str, list[dict]] = {}
    with kafka_broker() as bootstrap:
        for rev in ([args.against] if args.against else []) + [None]:
            label = describe_tree(rev)
            with code_tree(rev) as tree:
                for run in range(args.runs):
                    result = poll(tree, bootstrap, port, args.timeout, with_slow=True)
                    figures.setdefault(label, []).append(result)
                    print(
                        f"run {run + 1} {label}: normal published after {result['normal']:.2f} s, poll "
                        f"{result['poll']:.2f} s, {result['outcomes']}",
                        flush=True,
                    )
        with code_tree(None) as tree:
            anchor = [poll(tree, bootstrap, port, args.timeout, with_slow=False) for _ in range(args.runs)]
    print(
        f"\none poll, a {args.slow_bytes}-byte source at 1 byte/s listed before a normal one, fetch timeout "
        f"{args.timeout:g} s (medians of {args.runs} runs)"
    )
    alone = statistics.median(r["normal"] for r in anchor)
    for label, results in figures.items():
        normal = statistics.median(r["normal"] for r in results)
        print(
            f"  {label:40} normal published after {normal:6.2f} s ({normal / alone:5.1f}x the anchor), "
            f"whole poll {statistics.median(r['poll'] for r in results):6.2f} s"
        )
    print(f"  {'anchor: the normal source alone':40} normal published after {alone:6.2f} s")


if __name__ == "__main__":
    main()
