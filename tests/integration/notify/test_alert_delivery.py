"""Breaches on the real broker reach exactly the right subscribers, by webhook (real HTTP receiver) and email
(real SMTP server), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.notify.store import models
from services.notify.store.db import unit_of_work
from services.notify.worker import Notifier
from shared.events import BreachStatus, Classification, Severity
from tests.eventually import eventually
from tests.integration.notify.world import (
    add_email,
    add_marker_subscriber,
    add_org,
    add_product,
    add_webhook,
    breach,
    pass_marker,
    publish,
    running,
    subscribe,
    verified,
)

pytestmark = pytest.mark.integration


async def test_breach_reaches_direct_and_bom_subscribers_and_never_one_without_clearance(
    settings, db_sessions, http_receiver, smtp_inbox
):
    with unit_of_work(db_sessions) as s:
        direct = add_org(s, "Direct BV", clearance="restricted")
        hook = add_webhook(s, direct, http_receiver.url("/direct"))
        subscribe(s, direct, [hook], material="gallium")
        via_bom = add_org(s, "Radar Systems BV", clearance="government")
        mail = add_email(s, via_bom, "ops@radar.test", language="nl")
        radar = add_product(s, via_bom, "Radar module", [("GaN chip", "gallium"), ("Housing", "aluminium")])
        subscribe(s, via_bom, [mail], product=radar)
        uncleared = add_org(s, "Public Only BV", clearance="public")
        public_hook = add_webhook(s, uncleared, http_receiver.url("/uncleared"))
        subscribe(s, uncleared, [public_hook], material="gallium")
        other = add_org(s, "Germanium BV", clearance="government")
        other_hook = add_webhook(s, other, http_receiver.url("/other"))
        subscribe(s, other, [other_hook], material="germanium")
        marker = add_marker_subscriber(s, http_receiver)
        secret = hook.secret

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-ga-1", classification=Classification.RESTRICTED))
        await eventually(
            lambda: http_receiver.delivered("/direct") and smtp_inbox.to("ops@radar.test"),
            what="webhook and email delivered",
        )
        await pass_marker(settings, http_receiver, "after-ga-1")  # a wrong delivery would have shown up by now

    body = verified(http_receiver.delivered("/direct")[0], secret)
    assert [a["fingerprint"] for a in body["alerts"]] == ["fp-ga-1"]
    assert body["alerts"][0]["via"] == ["material:gallium"]
    assert body["status"] == "firing"
    assert body["organisation_id"] == direct.id
    assert http_receiver.to("/uncleared") == []
    assert http_receiver.to("/other") == []
    [mail_msg] = smtp_inbox.to("ops@radar.test")
    text = mail_msg.get_body(("plain",)).get_content()
    html = mail_msg.get_body(("html",)).get_content()
    assert "gallium" in mail_msg["subject"]
    assert "WAARSCHUWING" in mail_msg["subject"]
    assert "product Radar module > GaN chip" in text
    assert "tegen drempel 30,0 %" in text
    assert "http://mews.test/v1/ack/" in text
    assert "http://mews.test/v1/ack/" in html
    assert "https://example.org/prices/ga" in html
    with unit_of_work(db_sessions) as s:
        orgs_with_alert = set(s.scalars(select(models.Alert.organisation_id)))
    assert orgs_with_alert == {direct.id, via_bom.id, marker.id}


async def test_breaches_within_group_wait_go_out_as_one_notification_then_resolve_together(
    settings, db_sessions, http_receiver
):
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Grouped BV")
        hook = add_webhook(s, org, http_receiver.url("/grouped"))
        subscribe(s, org, [hook], material="gallium")
        add_marker_subscriber(s, http_receiver)
        secret = hook.secret

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-a", rule="price_spike"), breach("fp-b", rule="leadtime_jump"))
        await eventually(lambda: http_receiver.delivered("/grouped"), what="grouped notification")
        # A marker group begun later, past its first group interval: a second notice here would have come first.
        await pass_marker(settings, http_receiver, "grouped", rules=2)
        assert len(http_receiver.delivered("/grouped")) == 1
        first = verified(http_receiver.delivered("/grouped")[0], secret)
        assert sorted(a["fingerprint"] for a in first["alerts"]) == ["fp-a", "fp-b"]

        await publish(
            settings,
            breach("fp-a", rule="price_spike", status=BreachStatus.RESOLVED),
            breach("fp-b", rule="leadtime_jump", status=BreachStatus.RESOLVED),
        )

        def resolved_alerts() -> list[tuple[str, str]]:
            return sorted(
                (a["fingerprint"], a["status"])
                for r in http_receiver.delivered("/grouped")[1:]
                for a in json.loads(r.body)["alerts"]
            )

        await eventually(lambda: len(resolved_alerts()) >= 2, what="both resolutions delivered")

    notices = [verified(r, secret) for r in http_receiver.delivered("/grouped")]
    # Both resolutions normally share one interval tick; a tick boundary between them may split them in two.
    resolved = notices[1:]
    assert 1 <= len(resolved) <= 2
    assert all(n["status"] == "resolved" and n["kind"] == "resolved" for n in resolved)
    assert sorted((a["fingerprint"], a["status"]) for n in resolved for a in n["alerts"]) == [
        ("fp-a", "resolved"),
        ("fp-b", "resolved"),
    ]
    ids = [r.headers["webhook-id"] for r in http_receiver.delivered("/grouped")]
    assert len(set(ids)) == len(ids)


async def test_silenced_and_acknowledged_alerts_are_not_sent_again_but_a_change_is(
    settings, db_sessions, http_receiver
):
    now = datetime.now(UTC)
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Quiet BV")
        hook = add_webhook(s, org, http_receiver.url("/quiet"))
        subscribe(s, org, [hook], material="gallium")
        subscribe(s, org, [hook], material="antimony")
        add_marker_subscriber(s, http_receiver)
        s.add(
            models.Silence(
                organisation_id=org.id,
                material="antimony",
                comment="known",
                created_by="ops",
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(hours=1),
            )
        )

    fast_repeat = settings.model_copy(update={"repeat_interval_seconds": 0.5})
    async with running(fast_repeat, db_sessions):
        await publish(settings, breach("fp-sb", material="antimony"), breach("fp-ga", material="gallium"))

        def alert_rows() -> bool:
            with unit_of_work(db_sessions) as s:
                return len(s.scalars(select(models.Alert)).all()) == 2

        await eventually(alert_rows, what="both alerts stored")
        with unit_of_work(db_sessions) as s:
            # Acknowledged while the first notification waits out group_wait: it still goes, repeats do not.
            alert = s.scalar(select(models.Alert).where(models.Alert.fingerprint == "fp-ga"))
            alert.acknowledged_at, alert.acknowledged_by = datetime.now(UTC), "ops@quiet.test"
            silenced = s.scalar(select(models.Alert).where(models.Alert.fingerprint == "fp-sb"))
            assert silenced.status == "firing"  # kept and visible, just not sent
        await eventually(lambda: http_receiver.delivered("/quiet"), what="gallium alert")
        # A marker sent after it and then repeated: an unacknowledged alert would have gone out again before.
        await pass_marker(fast_repeat, http_receiver, "quiet", repeats=1)
        assert len(http_receiver.delivered("/quiet")) == 1
        await publish(settings, breach("fp-ga", material="gallium", severity=Severity.CRITICAL, value=0.7))
        await eventually(lambda: len(http_receiver.delivered("/quiet")) == 2, what="escalation")

    fingerprints = [[a["fingerprint"] for a in json.loads(r.body)["alerts"]] for r in http_receiver.to("/quiet")]
    assert fingerprints == [["fp-ga"], ["fp-ga"]]
    assert json.loads(http_receiver.to("/quiet")[1].body)["alerts"][0]["severity"] == "critical"


async def test_failed_webhook_is_retried_with_the_same_id_until_delivered(settings, db_sessions, http_receiver):
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Flaky BV")
        hook = add_webhook(s, org, http_receiver.url("/flaky"))
        subscribe(s, org, [hook], material="gallium")
        secret = hook.secret
    http_receiver.answer("/flaky", 500, 500)

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-flaky"))
        await eventually(lambda: http_receiver.delivered("/flaky"), what="delivery after two failures")

    attempts = http_receiver.to("/flaky")
    assert [r.status for r in attempts] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in attempts}) == 1
    for r in attempts:
        verified(r, secret)
    with unit_of_work(db_sessions) as s:
        [n] = s.scalars(select(models.Notification)).all()
        tries = s.scalars(
            select(models.DeliveryAttempt)
            .where(models.DeliveryAttempt.notification_id == n.id)
            .order_by(models.DeliveryAttempt.attempted_at)
        ).all()
    assert (n.status, n.attempts) == ("delivered", 3)
    assert [(t.outcome, t.status_code) for t in tries] == [("retry", 500), ("retry", 500), ("delivered", 200)]


async def test_gone_receiver_disables_the_channel_and_tells_the_admins(
    settings, db_sessions, http_receiver, smtp_inbox
):
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Gone BV", admins=("admin@gone.test",))
        hook = add_webhook(s, org, http_receiver.url("/gone"))
        subscribe(s, org, [hook], material="gallium")
        add_marker_subscriber(s, http_receiver)
        hook_id = hook.id
    http_receiver.answer("/gone", 410)

    async with running(settings, db_sessions) as notifier:
        await publish(settings, breach("fp-gone"))
        await eventually(lambda: smtp_inbox.to("admin@gone.test"), what="admin notice")
        await publish(settings, breach("fp-gone-2", rule="leadtime_jump"))
        await eventually(lambda: notifier.processed == 2, what="the later breach consumed")
        await pass_marker(settings, http_receiver, "gone")  # a send of the later breach would have come first

    assert len(http_receiver.to("/gone")) == 1
    with unit_of_work(db_sessions) as s:
        channel = s.get(models.Channel, hook_id)
        statuses = sorted(
            n.status
            for n in s.scalars(
                select(models.Notification).where(
                    models.Notification.kind != "admin_notice", models.Notification.organisation_id == org.id
                )
            )
        )
    assert channel.enabled is False
    assert "410" in channel.disabled_reason
    assert statuses == ["cancelled"]  # the later breach was routed nowhere: the channel is off
    [notice] = smtp_inbox.to("admin@gone.test")
    assert notice["subject"] == "[mews] Channel disabled: webhook at 127.0.0.1"
    text = notice.get_body(("plain",)).get_content()
    assert "Reason: the receiver answered HTTP 410: it takes no more messages" in text
    assert channel.secret not in text


async def test_nothing_is_lost_across_a_restart_mid_burst(settings, db_sessions, http_receiver):
    orgs = 6
    with unit_of_work(db_sessions) as s:
        for i in range(orgs):
            org = add_org(s, f"Burst {i} BV")
            subscribe(s, org, [add_webhook(s, org, http_receiver.url(f"/burst/{i}"))], material="gallium")
    http_receiver.delay_seconds = 0.05
    burst = [breach(f"fp-burst-{n}", rule=f"rule_{n}") for n in range(12)]
    fast = settings.model_copy(update={"group_wait_seconds": 0.0, "group_interval_seconds": 0.0})

    await publish(settings, *burst[:6])
    crashing = Notifier(
        fast, db_sessions, index_refresh_seconds=0, sweep_interval_seconds=0.3, lease=timedelta(seconds=1)
    )
    task = asyncio.create_task(crashing.run())
    await eventually(lambda: len(http_receiver.requests) >= 3, what="some deliveries")
    await publish(settings, *burst[6:])
    task.cancel()  # a crash, not a goodbye: in-flight sends and uncommitted offsets are abandoned
    with contextlib.suppress(asyncio.CancelledError):
        await task
    delivered_before = len(http_receiver.requests)

    def every_alert_delivered_everywhere() -> bool:
        seen = {
            (r.path, a["fingerprint"])
            for r in http_receiver.requests
            if r.status == 200
            for a in json.loads(r.body)["alerts"]
        }
        return len(seen) == orgs * len(burst)

    def outbox_drained() -> bool:
        with unit_of_work(db_sessions) as s:
            return {n.status for n in s.scalars(select(models.Notification))} == {"delivered"}

    async with running(fast, db_sessions, lease=timedelta(seconds=1)):
        await eventually(every_alert_delivered_everywhere, within=30, what="every alert everywhere")
        await eventually(outbox_drained, within=10, what="outbox drained")

    assert delivered_before < len(http_receiver.requests)
    bodies: dict[str, set[bytes]] = {}
    for r in http_receiver.requests:
        bodies.setdefault(r.headers["webhook-id"], set()).add(r.body)
    # Any repeat is recognisable: the same webhook-id carries the same body.
    assert all(len(b) == 1 for b in bodies.values())
    with unit_of_work(db_sessions) as s:
        statuses = {n.status for n in s.scalars(select(models.Notification))}
    assert statuses == {"delivered"}


async def test_unchanged_firing_alert_is_repeated_after_the_repeat_interval_with_a_new_id(
    settings, db_sessions, http_receiver
):
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Reminded BV")
        subscribe(s, org, [add_webhook(s, org, http_receiver.url("/remind"))], material="gallium")
    reminding = settings.model_copy(update={"repeat_interval_seconds": 1.0})

    async with running(reminding, db_sessions):
        await publish(settings, breach("fp-remind"))
        await eventually(lambda: len(http_receiver.delivered("/remind")) >= 2, what="a repeat")

    first, second = http_receiver.delivered("/remind")[:2]
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    assert [a["fingerprint"] for a in json.loads(second.body)["alerts"]] == ["fp-remind"]


async def test_resolution_closes_the_alert_even_after_the_subscription_is_gone(settings, db_sessions, http_receiver):
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Unsubscribed BV")
        sub = subscribe(s, org, [add_webhook(s, org, http_receiver.url("/gone-sub"))], material="gallium")
        sub_id = sub.id

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-orphan"))
        await eventually(lambda: http_receiver.delivered("/gone-sub"), what="the firing notification")
        with unit_of_work(db_sessions) as s:
            s.delete(s.get(models.Subscription, sub_id))

        def closed() -> bool:
            with unit_of_work(db_sessions) as s:
                return s.scalar(select(models.Alert.status)) == "resolved"

        await publish(settings, breach("fp-orphan", status=BreachStatus.RESOLVED))
        await eventually(closed, what="the alert resolved")


async def test_digest_channel_gets_warnings_at_the_daily_hour_and_criticals_at_once(settings, db_sessions, smtp_inbox):
    import time as clock_time

    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Digest BV")
        mail = add_email(s, org, "digest@digest.test", mode="digest")
        subscribe(s, org, [mail], material="gallium")
    # The notifier's clock reads 06:59:51 UTC at the start and runs at real speed; the digest hour is 07.
    start_real = clock_time.monotonic()
    start_fake = datetime.now(UTC).replace(hour=6, minute=59, second=51, microsecond=0)

    def clock() -> datetime:
        return start_fake + timedelta(seconds=clock_time.monotonic() - start_real)

    async with running(settings.model_copy(update={"digest_hour_utc": 7}), db_sessions, clock=clock):
        await publish(
            settings,
            breach("fp-w1", rule="price_spike"),
            breach("fp-w2", rule="leadtime_jump"),
            breach("fp-c", rule="export_ban", severity=Severity.CRITICAL),
        )
        [critical] = await eventually(lambda: smtp_inbox.to("digest@digest.test"), what="the critical alert")
        await eventually(lambda: len(smtp_inbox.to("digest@digest.test")) == 2, what="the digest")

    digest = smtp_inbox.to("digest@digest.test")[1]
    assert "CRITICAL gallium: export_ban" in critical["subject"]
    seven = start_fake + timedelta(seconds=9)
    assert critical["date"].datetime < seven <= digest["date"].datetime  # the critical did not wait
    assert digest["subject"] == "[mews] Daily digest: 2 warning(s)"
    text = digest.get_body(("plain",)).get_content()
    assert "price_spike" in text
    assert "leadtime_jump" in text
