"""A scoring worker with its broker away for 20 s: it waits it out, says so, keeps its state and scores again."""

from __future__ import annotations

import time

import httpx
import pytest

from shared import topics as declared
from shared.events import IndicatorSnapshot
from shared.kafka import ensure_topics

from .conftest import Worker, collect, price, produce, run

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]

OUTAGE_SECONDS = 20


def test_the_broker_away_for_20_s_is_waited_out_and_the_state_survives(stoppable_kafka, namespace, tmp_path):
    bootstrap = stoppable_kafka.bootstrap
    run(ensure_topics(bootstrap, namespace))
    worker = Worker(bootstrap, namespace, tmp_path, "away")
    try:
        worker.wait_ready(timeout=90)
        run(produce(bootstrap, namespace, [price("tungsten", 0, 100.0), price("tungsten", 1, 100.0)]))
        run(
            collect(
                bootstrap,
                namespace,
                declared.INDICATORS,
                lambda msgs: any(e.indicators.get("price_change_1d_pct") == 0.0 for _, e in msgs),
                wait=60,
            )
        )

        stoppable_kafka.stop()
        away_until = time.monotonic() + OUTAGE_SECONDS
        readiness = set()
        while time.monotonic() < away_until:
            assert worker.proc.poll() is None, f"the worker ended while the broker was away:\n{worker.tail()}"
            readiness.add(httpx.get(f"{worker.url}/readyz", timeout=5).status_code)
            assert httpx.get(f"{worker.url}/healthz", timeout=5).status_code == 200
            time.sleep(1)
        assert 503 in readiness, "never said it was not ready while its broker was away"
        stoppable_kafka.start()

        run(produce(bootstrap, namespace, [price("tungsten", 2, 130.0)]))
        snaps = run(
            collect(
                bootstrap,
                namespace,
                declared.INDICATORS,
                lambda msgs: any(e.indicators.get("price") == 130.0 for _, e in msgs),
                wait=120,
            )
        )
        latest = [e for _, e in snaps if isinstance(e, IndicatorSnapshot) and e.indicators.get("price") == 130.0]
        assert latest, worker.tail()
        # Against the day-1 price scored before the outage: the state stayed.
        assert latest[-1].indicators["price_change_1d_pct"] == pytest.approx(30.0)
        worker.wait_ready(timeout=60)
        assert worker.metric("mews_scoring_input_gaps_total") == 0
    finally:
        assert worker.stop(timeout=30) == 0, worker.tail()
