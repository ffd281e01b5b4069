"""The push API while Kafka is away, on a broker of this test's own that it stops and starts again.

A request Kafka does not acknowledge is answered 503 with Retry-After within the request deadline, well
before the client gives up; nothing of it is published later behind the client's back; the client's
retry once the broker is back publishes every item exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.ingest.api import create_app
from services.ingest.settings import IngestSettings
from shared import topics
from shared.kafka import ensure_topics
from tests.conftest import ROOT, free_port
from tests.eventually import eventually_blocking

from .conftest import read_topic

pytestmark = pytest.mark.integration
KEY = "ingest-key-for-the-outage-test"
DEADLINE_S = 2.0
CLIENT_TIMEOUT_S = 15.0  # the client of the reported incident gave up after 15 s


@dataclass
class Broker:
    """A single-node broker of this test alone, started and stopped with deploy/local/kafka.sh."""

    env: dict[str, str]
    bootstrap: str

    def run(self, action: str) -> None:
        subprocess.run(["bash", str(ROOT / "deploy" / "local" / "kafka.sh"), action], env=self.env, check=True)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "KAFKA_DIR": str(tmp_path / "kafka"),
        "KAFKA_HEAP": "384m",
    }
    broker = Broker(env, f"127.0.0.1:{port}")
    broker.run("start")
    try:
        yield broker
    finally:
        broker.run("stop")


@pytest.fixture
def api(own_broker: Broker, namespace: str, tmp_path: Path) -> Iterator[str]:
    """The ingest API served by uvicorn on a free port, on the test's broker."""
    import uvicorn

    asyncio.run(ensure_topics(own_broker.bootstrap, namespace))
    settings = IngestSettings(
        kafka_bootstrap_servers=own_broker.bootstrap,
        topic_namespace=namespace,
        state_dir=tmp_path / "state",
        request_deadline_s=DEADLINE_S,
        retry_after_s=3,
        api_keys=f"{hashlib.sha256(KEY.encode()).hexdigest()}:ingest",
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive(), "the ingest API stopped while starting"
        return server.started

    eventually_blocking(started, within=30, what="the ingest API started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def prices(first_day: int, count: int) -> list[dict]:
    day = datetime(2023, 1, 1, tzinfo=UTC)
    return [
        {
            "material": "gallium",
            "price": 300 + i,
            "currency": "USD",
            "unit": "kg",
            "source": "outage-test",
            "observed_at": (day + timedelta(days=first_day + i)).isoformat(),
        }
        for i in range(count)
    ]


def published_days(own_broker: Broker, namespace: str, expect: int) -> Counter[str]:
    messages = asyncio.run(
        read_topic(own_broker.bootstrap, namespace, topics.PRICES, expect=expect, deadline_s=30, settle=5)
    )
    return Counter(event.observed_at.date().isoformat() for _, event, _ in messages)


def test_a_batch_kafka_does_not_take_is_refused_in_time_never_published_later_and_published_once_on_retry(
    own_broker, api, namespace
):
    client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {KEY}"}, timeout=CLIENT_TIMEOUT_S)
    before, during = prices(0, 5), prices(100, 20)
    assert client.post("/v1/prices", json={"items": before}).status_code == 202

    own_broker.run("stop")
    assert client.get("/readyz").status_code == 503
    # The client's own timeout would raise here if the API held the request past it.
    refused = client.post("/v1/prices", json={"items": during})
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "3"
    assert refused.headers["content-type"] == "application/problem+json"
    assert [r["status"] for r in refused.json()["items"]] == ["not_published"] * len(during)
    assert client.post("/v1/prices", json={"items": during}).status_code == 503  # still away: refused again

    own_broker.run("start")
    eventually_blocking(
        lambda: client.get("/readyz").status_code == 200,
        within=90,
        every=0.5,
        what="ingest ready again after the broker returned",
    )
    # Time for anything still queued to reach the broker: none of the refused batch may arrive.
    days = published_days(own_broker, namespace, expect=len(before))
    assert days == Counter(p["observed_at"][:10] for p in before)

    retried = client.post("/v1/prices", json={"items": during})
    assert retried.status_code == 202
    assert [(r["status"], r["duplicate"]) for r in retried.json()["items"]] == [("accepted", False)] * len(during)
    days = published_days(own_broker, namespace, expect=len(before) + len(during))
    assert days == Counter(p["observed_at"][:10] for p in before + during)  # each exactly once
