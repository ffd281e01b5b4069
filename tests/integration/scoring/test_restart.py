"""A scoring worker killed outright and started again under the same group instance id, on the real broker."""

from __future__ import annotations

import pytest

from shared import topics as declared
from shared.events import IndicatorSnapshot

from .conftest import collect, price, produce, run

pytestmark = pytest.mark.integration


def test_a_worker_killed_and_started_again_scores_the_input_that_came_while_it_was_down(
    kafka_topics, kafka_bootstrap, start_worker, monkeypatch
):
    # As a StatefulSet pod comes back under its name: the restarted worker takes the dead one's place in the group.
    monkeypatch.setenv("MEWS_SCORING_GROUP_INSTANCE_ID", f"{kafka_topics}-scoring-0")
    first = start_worker(kafka_topics, name="first")
    run(produce(kafka_bootstrap, kafka_topics, [price("tungsten", 0, 100.0), price("tungsten", 1, 100.0)]))
    run(
        collect(
            kafka_bootstrap,
            kafka_topics,
            declared.INDICATORS,
            lambda msgs: any(e.indicators.get("price_change_1d_pct") == 0.0 for _, e in msgs),
        )
    )
    first.proc.kill()  # SIGKILL: no commit, no leaving the group, nothing flushed
    assert first.proc.wait() < 0

    run(produce(kafka_bootstrap, kafka_topics, [price("tungsten", 2, 130.0)]))
    second = start_worker(kafka_topics, name="second")

    snaps = [
        e
        for _, e in run(
            collect(
                kafka_bootstrap,
                kafka_topics,
                declared.INDICATORS,
                lambda msgs: any(e.indicators.get("price") == 130.0 for _, e in msgs),
                wait=60,
            )
        )
    ]
    latest = [s for s in snaps if isinstance(s, IndicatorSnapshot) and s.indicators.get("price") == 130.0]
    assert latest, second.tail()
    # Measured against the day-1 price the killed worker had scored: its state came back with the partitions.
    assert latest[-1].indicators["price_change_1d_pct"] == pytest.approx(30.0)
    assert second.metric("mews_scoring_input_gaps_total") == 0
