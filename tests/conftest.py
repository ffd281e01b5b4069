"""Fixtures shared by every test tier: the real Kafka broker, started once per session, and namespaces.

If KAFKA_BOOTSTRAP_SERVERS is set, tests use that cluster and start nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Apache Kafka broker (KRaft, single node) on 127.0.0.1 for the whole test session."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "KAFKA_DIR": str(tmp_path_factory.mktemp("kafka")),
    }
    script = ROOT / "deploy" / "local" / "kafka.sh"
    subprocess.run(["bash", str(script), "start"], env=env, check=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(script), "stop"], env=env, check=False)


@pytest.fixture
def namespace() -> str:
    """A topic namespace of this test alone, so tests cannot see each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def kafka_topics(kafka_bootstrap: str, namespace: str) -> str:
    """Every declared topic, created in this test's namespace; returns the namespace."""
    from shared.kafka import ensure_topics

    asyncio.run(ensure_topics(kafka_bootstrap, namespace))
    return namespace
