"""Catch-up on the real broker: an organisation that subscribes while breaches are open is told of each once,
marked open since when; a channel added later is told too; restarts, replays and a re-created subscription
send nothing more."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from services.notify.store import models
from services.notify.store.db import unit_of_work
from shared.events import BreachStatus
from tests.eventually import eventually
from tests.integration.notify.world import (
    add_org,
    add_webhook,
    breach,
    pass_sweeps,
    publish,
    running,
    subscribe,
    verified,
)

pytestmark = pytest.mark.integration


def told(receiver, path: str) -> Counter:
    """How often each fingerprint reached a receiver path, from the delivered bodies."""
    return Counter(a["fingerprint"] for r in receiver.delivered(path) for a in json.loads(r.body)["alerts"])


async def test_a_late_subscriber_is_told_once_of_the_breaches_already_open(settings, db_sessions, http_receiver):
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    opened = [
        breach("fp-sb", material="antimony", observed_at=earlier),
        breach("fp-ge", material="germanium", observed_at=earlier),
        breach("fp-ga", material="gallium", observed_at=earlier),
    ]
    closed = breach(
        "fp-ga", material="gallium", status=BreachStatus.RESOLVED, observed_at=earlier + timedelta(minutes=1)
    )

    async with running(settings, db_sessions) as notifier:
        await publish(settings, *opened, closed)  # no one subscribes to any of them yet

        def remembered() -> list[str]:
            with unit_of_work(db_sessions) as s:
                return sorted(s.scalars(select(models.OpenBreach.fingerprint)))

        # Every breach consumed first: the partitions arrive in any order, and a gallium firing consumed after the
        # subscription below would be a new alert, not a catch-up.
        await eventually(lambda: notifier.processed == 4, what="the four breaches consumed")
        assert remembered() == ["fp-ge", "fp-sb"]
        with unit_of_work(db_sessions) as s:
            org = add_org(s, "Late BV")
            hook = add_webhook(s, org, http_receiver.url("/late"))
            secret = hook.secret
            for material in ("antimony", "germanium", "gallium"):
                subscription = subscribe(s, org, [hook], material=material)
            org_id, gallium_subscription = org.id, subscription.id
        await eventually(lambda: sum(told(http_receiver, "/late").values()) >= 2, what="catch-up")
        assert told(http_receiver, "/late") == {"fp-sb": 1, "fp-ge": 1}
        body = verified(http_receiver.delivered("/late")[0], secret)
        for alert in body["alerts"]:
            assert alert["open_since"] == opened[0].starts_at.isoformat()
            assert alert["summary"].startswith("Open since ")
        # Later catch-ups of the same breach: a catch-up that repeated would have sent again before them.
        await pass_sweeps(db_sessions, http_receiver, "first", "antimony", "fp-sb")

    # A restart, a replay of the same breaches, and the subscriptions re-created send nothing more.
    with unit_of_work(db_sessions) as s:
        s.execute(delete(models.Subscription).where(models.Subscription.organisation_id == org_id))
        hook = s.get(models.Channel, hook.id)
        org = s.get(models.Organisation, org_id)
        for material in ("antimony", "germanium"):
            subscribe(s, org, [hook], material=material)
    async with running(settings, db_sessions, group_id="mews-notify-replay") as notifier:
        await publish(settings, *opened[:2])
        await eventually(lambda: notifier.processed == 6, what="the topic read again from its start")
        await pass_sweeps(db_sessions, http_receiver, "replay", "antimony", "fp-sb")
        assert told(http_receiver, "/late") == {"fp-sb": 1, "fp-ge": 1}

        # A channel added to a subscription hears of its open breach, once, marked the same way.
        with unit_of_work(db_sessions) as s:
            org = s.get(models.Organisation, org_id)
            added = add_webhook(s, org, http_receiver.url("/added"))
            antimony = s.scalar(
                select(models.Subscription).where(
                    models.Subscription.organisation_id == org_id, models.Subscription.material == "antimony"
                )
            )
            s.add(models.SubscriptionChannel(subscription_id=antimony.id, channel_id=added.id))
        await eventually(lambda: told(http_receiver, "/added") == {"fp-sb": 1}, what="the added channel told")
        [alert] = json.loads(http_receiver.delivered("/added")[0].body)["alerts"]
        assert alert["open_since"] == opened[0].starts_at.isoformat()
        await pass_sweeps(db_sessions, http_receiver, "added", "antimony", "fp-sb")
    assert told(http_receiver, "/added") == {"fp-sb": 1}
    assert told(http_receiver, "/late") == {"fp-sb": 1, "fp-ge": 1}
    assert gallium_subscription  # resolved before anyone subscribed: never sent
