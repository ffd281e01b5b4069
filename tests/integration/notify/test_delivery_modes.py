"""Delivery modes per channel on the real broker, database, SMTP server and a loopback webhook receiver: the weekly
digest (and none when nothing happened), quiet hours that delay a warning but never a critical, and a minimum
severity. The notifier runs on a clock set just before the hour that matters, at real speed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from services.notify.store import models
from services.notify.store.db import unit_of_work
from shared.events import Severity
from tests.eventually import eventually
from tests.integration.notify.world import breach, publish, running, subscribe

pytestmark = pytest.mark.integration


def clock_from(start: datetime) -> Callable[[], datetime]:
    """A clock that reads `start` now and runs at real speed."""
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def channel(tenant, **body) -> str:
    answer = tenant.http.post("/v1/channels", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def subscribe_channels(db_sessions, tenant, material: str, *channel_ids: str) -> None:
    with unit_of_work(db_sessions) as s:
        subscribe(
            s, s.get(models.Organisation, tenant.id), [s.get(models.Channel, c) for c in channel_ids], material=material
        )


def notified_channels(db_sessions) -> set[str]:
    with unit_of_work(db_sessions) as s:
        return set(s.scalars(select(models.Notification.channel_id)))


def test_channels_take_and_show_their_delivery_settings_and_refuse_bad_ones(make_tenant) -> None:
    tenant = make_tenant("Settings BV")
    created = tenant.http.post(
        "/v1/channels",
        json={
            "kind": "email",
            "target": "ops@settings.test",
            "mode": "digest",
            "digest_every": "week",
            "min_severity": "critical",
            "quiet_from_hour": 22,
            "quiet_until_hour": 7,
            "timezone": "Europe/Amsterdam",
        },
    ).json()
    assert {
        k: created[k]
        for k in ("mode", "digest_every", "min_severity", "quiet_from_hour", "quiet_until_hour", "timezone")
    } == {
        "mode": "digest",
        "digest_every": "week",
        "min_severity": "critical",
        "quiet_from_hour": 22,
        "quiet_until_hour": 7,
        "timezone": "Europe/Amsterdam",
    }
    patched = tenant.http.patch(
        f"/v1/channels/{created['id']}", json={"quiet_from_hour": None, "quiet_until_hour": None}
    ).json()
    assert (patched["quiet_from_hour"], patched["quiet_until_hour"], patched["digest_every"]) == (None, None, "week")
    plain = tenant.http.post("/v1/channels", json={"kind": "email", "target": "plain@settings.test"}).json()
    assert (plain["digest_every"], plain["min_severity"], plain["timezone"]) == ("day", "warning", "UTC")
    for bad in (
        {"timezone": "Mars/Olympus"},
        {"quiet_from_hour": 22},
        {"quiet_from_hour": 24, "quiet_until_hour": 7},
        {"digest_every": "month"},
        {"min_severity": "info"},
    ):
        answer = tenant.http.post("/v1/channels", json={"kind": "email", "target": "bad@settings.test", **bad})
        assert answer.status_code == 422, bad


async def test_weekly_digest_carries_the_weeks_warnings_and_a_quiet_week_sends_none(
    settings, db_sessions, smtp_inbox, make_tenant
):
    tenant = make_tenant("Weekly BV")
    weekly = channel(tenant, kind="email", target="weekly@weekly.test", mode="digest", digest_every="week")
    quiet_week = channel(tenant, kind="email", target="nothing@weekly.test", mode="digest", digest_every="week")
    subscribe_channels(db_sessions, tenant, "gallium", weekly)
    subscribe_channels(db_sessions, tenant, "antimony", quiet_week)
    today = datetime.now(UTC)
    monday = (today + timedelta(days=-today.weekday() % 7)).replace(hour=6, minute=59, second=51, microsecond=0)

    async with running(
        settings.model_copy(update={"digest_hour_utc": 7, "digest_weekday": 0}), db_sessions, clock=clock_from(monday)
    ):
        await publish(
            settings,
            breach("fp-w1", rule="price-change-30d"),
            breach("fp-w2", rule="leadtime-ratio"),
            breach("fp-c", rule="stock-cover", severity=Severity.CRITICAL),
        )
        [critical] = await eventually(lambda: smtp_inbox.to("weekly@weekly.test"), what="the critical alert")
        await eventually(lambda: len(smtp_inbox.to("weekly@weekly.test")) == 2, what="the weekly digest")

    digest = smtp_inbox.to("weekly@weekly.test")[1]
    seven = monday + timedelta(seconds=9)
    assert critical["date"].datetime < seven <= digest["date"].datetime
    assert digest["subject"] == "[mews] Weekly digest: 2 warning(s)"
    text = digest.get_body(("plain",)).get_content()
    assert "== gallium / 30-day price change: WARNING" in text  # rules by name (price-change-30d, leadtime-ratio)
    assert "/ lead time: WARNING" in text
    # Its digest fell due with the other, but nothing happened on its materials: no notification was ever made.
    assert quiet_week not in notified_channels(db_sessions)
    assert smtp_inbox.to("nothing@weekly.test") == []


async def test_quiet_hours_delay_a_warning_to_their_end_in_the_channels_time_zone_but_never_a_critical(
    settings, db_sessions, http_receiver, make_tenant
):
    tenant = make_tenant("Night BV")
    night = channel(
        tenant,
        kind="webhook",
        target=http_receiver.url("/night"),
        quiet_from_hour=22,
        quiet_until_hour=7,
        timezone="Europe/Amsterdam",
    )
    subscribe_channels(db_sessions, tenant, "gallium", night)
    amsterdam = ZoneInfo("Europe/Amsterdam")
    start = datetime.now(amsterdam).replace(hour=6, minute=59, second=52, microsecond=0).astimezone(UTC)
    seven = start + timedelta(seconds=8)

    async with running(settings, db_sessions, clock=clock_from(start)) as notifier:
        await publish(
            settings,
            breach("fp-night-w", rule="price-change-30d"),
            breach("fp-night-c", rule="leadtime-ratio", severity=Severity.CRITICAL),
        )
        await eventually(lambda: http_receiver.delivered("/night"), what="the critical alert")
        critical_at = notifier.clock()
        await eventually(lambda: len(http_receiver.delivered("/night")) == 2, what="the warning after 07:00")
        warning_at = notifier.clock()

    first, second = (
        [a["fingerprint"] for a in json.loads(r.body)["alerts"]] for r in http_receiver.delivered("/night")
    )
    assert first == ["fp-night-c"]
    assert second == ["fp-night-w"]
    assert critical_at < seven <= warning_at
    with unit_of_work(db_sessions) as s:
        due = s.scalars(select(models.Notification.scheduled_at)).all()
    assert seven in due  # the warning was scheduled for the end of the quiet hours, 07:00 in Amsterdam


async def test_a_channel_takes_only_alerts_of_its_minimum_severity(settings, db_sessions, http_receiver, make_tenant):
    tenant = make_tenant("Critical Only BV")
    critical_only = channel(tenant, kind="webhook", target=http_receiver.url("/critical"), min_severity="critical")
    everything = channel(tenant, kind="webhook", target=http_receiver.url("/everything"))
    subscribe_channels(db_sessions, tenant, "gallium", critical_only, everything)

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-min-w", rule="price-change-30d"))
        await eventually(lambda: http_receiver.delivered("/everything"), what="the warning on the other channel")
        assert critical_only not in notified_channels(db_sessions)
        await publish(settings, breach("fp-min-c", rule="leadtime-ratio", severity=Severity.CRITICAL))
        await eventually(lambda: http_receiver.delivered("/critical"), what="the critical alert")

    assert [[a["fingerprint"] for a in json.loads(r.body)["alerts"]] for r in http_receiver.delivered("/critical")] == [
        ["fp-min-c"]
    ]
