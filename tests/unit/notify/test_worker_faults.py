"""The notifier waits faults out: a loop that raises starts again after a backoff, readiness says why meanwhile,
and `run` never ends on a fault. No broker: the loops are replaced by ones that fail on purpose."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.errors import CommitFailedError
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError, OperationalError

from services.notify.api.app import create_app
from services.notify.settings import NotifySettings
from services.notify.worker import Notifier, dependency_of
from tests.eventually import eventually


@pytest.fixture
def notifier(tmp_path: Path) -> Notifier:
    from services.notify.store.db import migrate

    url = f"sqlite:///{tmp_path / 'notify.db'}"
    migrate(url)
    return Notifier(NotifySettings(database_url=url, kafka_bootstrap_servers="127.0.0.1:9"))


def test_faults_are_put_down_to_the_dependency_they_come_from():
    assert dependency_of(OperationalError("SELECT 1", {}, Exception("connection refused"))) == "database"
    assert dependency_of(CommitFailedError("rebalanced")) == "broker"
    assert dependency_of(IntegrityError("INSERT", {}, Exception("unique"))) == "notifier"
    assert dependency_of(ValueError("bug")) == "notifier"


async def test_run_restarts_a_failing_loop_and_says_not_ready_while_it_waits(notifier: Notifier):
    calls: list[str] = []
    seen_while_waiting: list[str | None] = []

    async def flaky_consume() -> None:
        calls.append("consume")
        if calls.count("consume") <= 3:
            raise OperationalError("SELECT 1", {}, Exception("the database is away"))
        await notifier._stopping.wait()

    async def broken_sweep() -> None:
        calls.append("sweep")
        raise ValueError("a bug in the sweep")

    async def idle() -> None:
        await notifier._stopping.wait()

    notifier.consume, notifier.sweep_forever, notifier.deliver = flaky_consume, broken_sweep, idle  # type: ignore[method-assign]
    task = asyncio.create_task(notifier.run())
    await eventually(lambda: "database" in notifier.waiting, within=5, what="the database fault waited out")
    seen_while_waiting.append(await notifier.database_ready())
    await eventually(
        lambda: calls.count("consume") == 4 and calls.count("sweep") >= 3,
        within=10,
        what="the faults waited out and the sweep retried",
    )
    assert not task.done()
    assert calls.count("consume") == 4  # three faults waited out (0.2 s, 0.4 s, 0.8 s), then it runs
    assert calls.count("sweep") >= 3  # a loop that keeps failing keeps being retried, never ends the process
    assert await notifier.database_ready() is None
    notifier.stop()
    await asyncio.wait_for(task, 10)
    [waiting] = seen_while_waiting
    assert waiting is not None
    assert waiting.startswith("consume waits out OperationalError")


def test_readyz_reports_every_check_it_is_given(tmp_path: Path):
    async def database() -> str | None:
        return None

    async def broker() -> str | None:
        return "kafka unreachable: KafkaConnectionError"

    settings = NotifySettings(database_url=f"sqlite:///{tmp_path / 'notify.db'}")
    with TestClient(create_app(settings, readiness={"database": database, "broker": broker})) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["failures"] == {"broker": "kafka unreachable: KafkaConnectionError"}
