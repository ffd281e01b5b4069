"""The worker's group membership settings reach the Kafka consumer faust creates for it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.scoring.app import create_app, listen_for_api
from services.scoring.settings import ScoringSettings
from tests.conftest import free_port


async def kafka_consumer(settings: ScoringSettings):
    """The aiokafka consumer faust's worker would start for these settings (created, not started)."""
    app = create_app(settings)
    return app.consumer._thread._create_worker_consumer(app.transport)


async def test_an_explicit_instance_id_and_session_timeout_reach_the_consumer(tmp_path: Path):
    consumer = await kafka_consumer(
        ScoringSettings(data_dir=tmp_path, group_instance_id="mews-scoring-1", session_timeout_seconds=12)
    )

    assert consumer._group_instance_id == "mews-scoring-1"
    assert consumer._session_timeout_ms == 12_000
    assert consumer._heartbeat_interval_ms == 3_000


async def test_by_default_a_worker_is_a_static_member_named_after_its_host_and_port(tmp_path: Path):
    consumer = await kafka_consumer(ScoringSettings(data_dir=tmp_path, port=8123))

    assert consumer._group_instance_id == f"{socket.gethostname()}-8123"
    assert consumer._session_timeout_ms == 10_000


async def test_dynamic_membership_when_static_membership_is_off(tmp_path: Path):
    consumer = await kafka_consumer(
        ScoringSettings(data_dir=tmp_path, static_membership=False, group_instance_id="ignored")
    )

    assert consumer._group_instance_id is None


async def test_a_short_session_gets_several_heartbeats(tmp_path: Path):
    consumer = await kafka_consumer(ScoringSettings(data_dir=tmp_path, session_timeout_seconds=6))

    assert consumer._heartbeat_interval_ms == 2_000


def test_membership_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MEWS_SCORING_GROUP_INSTANCE_ID", "mews-scoring-0")
    monkeypatch.setenv("MEWS_SCORING_SESSION_TIMEOUT_SECONDS", "15")

    settings = ScoringSettings()

    assert (settings.instance_id, settings.session_timeout_seconds) == ("mews-scoring-0", 15.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("group_instance_id", "two words"),
        ("session_timeout_seconds", 0),
        ("session_timeout_seconds", 91),  # faust refuses a session longer than its request timeout (90 s)
    ],
)
def test_invalid_membership_settings_are_refused(field: str, value: object):
    with pytest.raises(ValidationError, match=field):
        ScoringSettings(**{field: value})


def test_a_second_worker_on_the_same_port_stops_before_it_could_take_the_first_ones_instance_id():
    settings = ScoringSettings(port=free_port())
    first = listen_for_api(settings)
    try:
        with pytest.raises(SystemExit, match=f"cannot listen on 127.0.0.1:{settings.port}"):
            listen_for_api(settings)
    finally:
        first.close()
