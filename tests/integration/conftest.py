"""What tests of several services share on the real parts: the long-test switch, a broker a test may stop and start."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: takes over a minute; runs with MEWS_LONG_TESTS=1 or -m long")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep tests over a minute out of the default run (a broker of their own takes half a minute to start)."""
    if os.environ.get("MEWS_LONG_TESTS") == "1" or "long" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="takes over a minute; MEWS_LONG_TESTS=1 or -m long runs it")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


class StoppableKafka:
    """A Kafka broker of one test (deploy/local/kafka.sh on free ports), which the test may stop and start."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.script = ROOT / "deploy" / "local" / "kafka.sh"
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_DIR": str(directory),
        }
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run(["bash", str(self.script), "start"], env=self.env, check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(["bash", str(self.script), "stop"], env=self.env, check=False, capture_output=True)


@pytest.fixture
def stoppable_kafka(tmp_path: Path) -> Iterator[StoppableKafka]:
    """A Kafka broker of this test alone, started; the test may stop and start it (never the shared one)."""
    broker = StoppableKafka(tmp_path / "kafka")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
