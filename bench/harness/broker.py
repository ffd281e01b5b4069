"""The Kafka broker a benchmark talks to: KAFKA_BOOTSTRAP_SERVERS if set, else one of its own for the run."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator

from .trees import ROOT

KAFKA_SCRIPT = ROOT / "deploy" / "local" / "kafka.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def kafka_broker() -> Iterator[str]:
    """Bootstrap servers: the ones named in the environment, or a single-node broker started on free ports."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    with tempfile.TemporaryDirectory(prefix="mews-bench-kafka-") as tmp:
        port = _free_port()
        env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(_free_port()), "KAFKA_DIR": tmp}
        print(f"KAFKA_BOOTSTRAP_SERVERS not set: starting a broker of this run on 127.0.0.1:{port} ...", flush=True)
        subprocess.run(["bash", str(KAFKA_SCRIPT), "start"], env=env, check=True, stdout=subprocess.DEVNULL)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            subprocess.run(["bash", str(KAFKA_SCRIPT), "stop"], env=env, check=False, stdout=subprocess.DEVNULL)
