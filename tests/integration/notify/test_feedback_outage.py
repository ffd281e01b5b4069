"""The loops and routes added for catch-up, feedback and unsubscribing, with PostgreSQL stopped for 20 s: the
open-breaches write and the catch-up in the sweep wait the outage out and lose nothing; the feedback and
unsubscribe routes answer 503 with a reason while it lasts and work again after; the notifier never ends."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.notify.ack_links import unsubscribe_url
from services.notify.api.app import create_app
from services.notify.store import models
from services.notify.store.db import create_db_engine, session_factory, unit_of_work
from services.notify.worker import Notifier
from tests.eventually import eventually
from tests.integration.notify.conftest import BOOTSTRAP_TOKEN, LINK_KEY
from tests.integration.notify.world import add_webhook, breach, notifier_settings, pass_sweeps, publish, subscribe

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_SECONDS = 20


def told(receiver, path: str) -> Counter:
    return Counter(a["fingerprint"] for r in receiver.delivered(path) for a in json.loads(r.body)["alerts"])


def unavailable() -> float:
    return REGISTRY.get_sample_value("mews_notify_api_unavailable_total", {"dependency": "database"}) or 0.0


async def test_catch_up_open_breaches_feedback_and_unsubscribe_wait_out_postgresql_stopped_for_20_s(
    kafka_bootstrap, kafka_topics, smtp_inbox, http_receiver, stoppable_postgres
):
    url = stoppable_postgres.migrated_database("notify")
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    settings = notifier_settings(
        kafka_bootstrap, kafka_topics, url, smtp_inbox, bootstrap_admin_token=BOOTSTRAP_TOKEN, link_signing_key=LINK_KEY
    )
    notifier = Notifier(
        settings, sessions, index_refresh_seconds=0, sweep_interval_seconds=0.3, lease=timedelta(seconds=2)
    )
    app = create_app(settings, engine=engine, readiness=notifier.readiness_checks())
    task = asyncio.create_task(notifier.run())
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notify") as api:
            answer = await api.post(
                "/v1/organisations",
                json={"name": "Outage BV", "kind": "company"},
                headers={"Authorization": f"Bearer {BOOTSTRAP_TOKEN}"},
            )
            assert answer.status_code == 201, answer.text
            created = answer.json()
            org_id, key = created["organisation"]["id"], {"Authorization": f"Bearer {created['api_key']}"}
            with unit_of_work(sessions) as s:
                org = s.get(models.Organisation, org_id)
                early = add_webhook(s, org, http_receiver.url("/early"))
                subscribe(s, org, [early], material="gallium")
                leaving = add_webhook(s, org, http_receiver.url("/leaving"))
                early_id, leaving_id = early.id, leaving.id
            await publish(settings, breach("fp-ga-1"), breach("fp-ge", material="germanium", observed_at=earlier))
            await eventually(lambda: told(http_receiver, "/early") == {"fp-ga-1": 1}, within=30, what="before")
            await eventually(lambda: "fp-ge" in remembered(sessions), within=30, what="germanium remembered")
            [alert] = json.loads(http_receiver.delivered("/early")[0].body)["alerts"]
            token_url = unsubscribe_url(settings, leaving_id, org_id).replace(settings.public_base_url, "")

            # A subscription to germanium made while the sweep (in the pipeline's database thread) is held, then
            # the database stops: its catch-up can only happen after the outage.
            holding, release = threading.Event(), threading.Event()

            def hold() -> None:
                holding.set()
                release.wait(30)

            held = asyncio.ensure_future(notifier.in_database_thread(hold))
            await asyncio.to_thread(holding.wait, 10)
            with unit_of_work(sessions) as s:
                late = add_webhook(s, s.get(models.Organisation, org_id), http_receiver.url("/late"))
                subscribe(s, s.get(models.Organisation, org_id), [late], material="germanium")
            stoppable_postgres.stop()
            stopped = time.monotonic()
            release.set()
            await held

            # While away: breaches keep coming (one of a material no one subscribes to yet); the routes say 503.
            await publish(
                settings,
                breach("fp-ga-2", rule="price-volatility"),
                breach("fp-sb", material="antimony", observed_at=earlier),
            )
            before = unavailable()
            for answer in (
                await api.post(f"/v1/alerts/{alert['id']}/feedback", json={"reason": "useful"}, headers=key),
                await api.get(token_url),
                await api.post(token_url),
            ):
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.headers["retry-after"] == "5"
                assert answer.json()["detail"] == (
                    "the database is unavailable; nothing was changed, try again shortly"
                )
            assert unavailable() - before == 3
            assert (await api.get("/readyz")).status_code == 503
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
            assert not task.done()
            assert http_receiver.to("/late") == []
            stoppable_postgres.start()

            # Back: nothing lost, each told once; the routes work again.
            await eventually(
                lambda: told(http_receiver, "/early") == {"fp-ga-1": 1, "fp-ga-2": 1},
                within=60,
                what="the breach of the outage delivered",
            )
            await eventually(
                lambda: told(http_receiver, "/late") == {"fp-ge": 1},
                within=60,
                what="the catch-up held over the outage",
            )
            await eventually(
                lambda: "fp-sb" in remembered(sessions), within=30, what="the breach of the outage remembered as open"
            )
            said = await api.post(f"/v1/alerts/{alert['id']}/feedback", json={"reason": "useful"}, headers=key)
            assert said.status_code == 201, said.text
            assert (await api.post(token_url)).status_code == 200
            with unit_of_work(sessions) as s:
                assert s.get(models.Channel, leaving_id).enabled is False
                assert s.get(models.Channel, early_id).enabled is True
                assert [f.reason for f in s.scalars(select(models.AlertFeedback))] == ["useful"]
            await eventually(lambda: notifier.waiting == {}, within=30, what="no fault waited out")
            assert (await api.get("/readyz")).status_code == 200
            # Later catch-ups of the same breach: a catch-up told twice would have come before them.
            await pass_sweeps(sessions, http_receiver, "after", "germanium", "fp-ge")
            assert told(http_receiver, "/late") == {"fp-ge": 1}
            assert told(http_receiver, "/early") == {"fp-ga-1": 1, "fp-ga-2": 1}
            assert not task.done()
    finally:
        notifier.stop()
        await asyncio.wait_for(task, 30)
        engine.dispose()


def remembered(sessions) -> set[str]:
    try:
        with unit_of_work(sessions) as s:
            return set(s.scalars(select(models.OpenBreach.fingerprint)))
    except Exception:  # the database is away: not yet
        return set()
