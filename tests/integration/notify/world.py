"""Builders of a small world in the notifier database (organisations, channels, products, subscriptions) and
of breaches, for the alert pipeline tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from services.notify.settings import NotifySettings
from services.notify.store import models
from services.notify.store.db import unit_of_work
from services.notify.worker import Notifier
from shared import topics
from shared.events import BreachRaised, BreachStatus, Classification, Evidence, Severity
from shared.kafka import EventProducer
from tests.eventually import eventually


def add_org(
    s: Session, name: str, clearance: str = "public", kind: str = "company", admins: tuple[str, ...] = ()
) -> models.Organisation:
    org = models.Organisation(name=name, kind=kind, clearance=clearance)
    s.add(org)
    s.flush()
    for email in admins:
        s.add(models.User(organisation_id=org.id, email=email, name=email, role="admin", language="en"))
    return org


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def add_webhook(s: Session, org: models.Organisation, url: str, mode: str = "immediate") -> models.Channel:
    channel = models.Channel(organisation_id=org.id, kind="webhook", target=url, secret=new_secret(), mode=mode)
    s.add(channel)
    s.flush()
    return channel


def add_email(
    s: Session, org: models.Organisation, address: str, language: str = "en", mode: str = "immediate"
) -> models.Channel:
    channel = models.Channel(organisation_id=org.id, kind="email", target=address, language=language, mode=mode)
    s.add(channel)
    s.flush()
    return channel


def add_product(s: Session, org: models.Organisation, name: str, lines: list[tuple[str, str]]) -> models.Product:
    product = models.Product(organisation_id=org.id, name=name, description="")
    s.add(product)
    s.flush()
    for component, material in lines:
        s.add(models.BomLine(product_id=product.id, component=component, material=material, share=0.1))
    s.flush()
    return product


def subscribe(
    s: Session,
    org: models.Organisation,
    channels: list[models.Channel],
    *,
    material: str | None = None,
    product: models.Product | None = None,
    min_severity: str = "warning",
) -> models.Subscription:
    sub = models.Subscription(
        organisation_id=org.id, material=material, product_id=product.id if product else None, min_severity=min_severity
    )
    s.add(sub)
    s.flush()
    for channel in channels:
        s.add(models.SubscriptionChannel(subscription_id=sub.id, channel_id=channel.id))
    s.flush()
    return sub


def breach(
    fingerprint: str,
    material: str = "gallium",
    rule: str = "price_spike",
    severity: Severity = Severity.WARNING,
    status: BreachStatus = BreachStatus.FIRING,
    classification: Classification = Classification.PUBLIC,
    value: float = 0.42,
    observed_at: datetime | None = None,
) -> BreachRaised:
    observed = observed_at or datetime.now(UTC)
    started = observed - timedelta(hours=1)
    return BreachRaised(
        fingerprint=fingerprint,
        material=material,
        rule=rule,
        indicator="price_volatility",
        severity=severity,
        status=status,
        value=value,
        warning_threshold=0.3,
        critical_threshold=0.6,
        clear_threshold=0.25,
        threshold=0.3 if status == BreachStatus.FIRING else 0.25,
        starts_at=started,
        ends_at=observed if status == BreachStatus.RESOLVED else None,
        observed_at=observed,
        summary=f"{material} price volatility {value:.2f} above 0.30",
        evidence=[
            Evidence(
                id="ev-1", source="lme", kind="price", time=observed, value=812.5, url="https://example.org/prices/ga"
            )
        ],
        classification=classification,
    )


def notifier_settings(
    kafka_bootstrap: str, namespace: str, database_url: str, smtp_inbox, **overrides: object
) -> NotifySettings:
    """Settings with short timers, the test's SMTP server, and 127.0.0.1 allowed as a webhook target."""
    values = dict(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_namespace=namespace,
        database_url=database_url,
        smtp_host=smtp_inbox.host,
        smtp_port=smtp_inbox.port,
        allow_private_webhook_targets=True,
        public_base_url="http://mews.test",
        group_wait_seconds=0.5,
        group_interval_seconds=1.0,
        repeat_interval_seconds=3600,
        retry_initial_seconds=0.2,
        retry_max_interval_seconds=0.4,
        retry_jitter=0,
        retry_max_attempts=4,
        channel_disable_after_failures=3,
        outbox_poll_seconds=0.05,
        webhook_timeout_seconds=5,
    )
    values.update(overrides)
    return NotifySettings(**values)


@contextlib.asynccontextmanager
async def running(settings: NotifySettings, sessions: sessionmaker[Session], **options) -> AsyncIterator[Notifier]:
    """A notifier running in this event loop, stopped (gracefully) on exit."""
    options.setdefault("group_id", "mews-notify")
    notifier = Notifier(settings, sessions, index_refresh_seconds=0, sweep_interval_seconds=0.3, **options)
    task = asyncio.create_task(notifier.run())
    try:
        yield notifier
    finally:
        notifier.stop()
        await asyncio.wait_for(task, 15)


async def publish(settings: NotifySettings, *breaches: BreachRaised) -> None:
    producer = EventProducer(
        settings.kafka_bootstrap_servers, source="mews/scoring", namespace=settings.topic_namespace
    )
    await producer.start()
    try:
        for b in breaches:
            await producer.send(topics.BREACHES, b, key=b.fingerprint)
    finally:
        await producer.stop()


def verified(received, secret: str) -> dict:
    """The body of a webhook request, after the standardwebhooks library verified its signature."""
    return Webhook(secret).verify(received.body, received.headers)


MARKER_PATH = "/marker"


def add_marker_subscriber(s: Session, receiver, material: str = "tungsten") -> models.Organisation:
    """An organisation of its own, told of `material` at MARKER_PATH: the subscriber `pass_marker` waits on."""
    org = add_org(s, "Marker BV")
    subscribe(s, org, [add_webhook(s, org, receiver.url(MARKER_PATH))], material=material)
    return org


async def pass_marker(
    settings: NotifySettings, receiver, name: str, material: str = "tungsten", rules: int = 1, repeats: int = 0
) -> None:
    """Send marker breaches through the same path, produced now, and wait until the marker subscriber is told.

    To show that something did not happen: whatever was due before the marker would have been delivered before it.
    `rules` breaches in turn, each after the one before was delivered, take a group interval each; `repeats`
    waits for that many repeats of the last one (with a short repeat interval), a repeat interval each.
    """

    def told(fingerprint: str) -> int:
        return sum(
            1
            for r in receiver.delivered(MARKER_PATH)
            for a in json.loads(r.body)["alerts"]
            if a["fingerprint"] == fingerprint
        )

    for n in range(rules):
        fingerprint = f"marker-{name}-{n}"
        await publish(settings, breach(fingerprint, material=material, rule=f"marker_{n}"))
        times = 1 + (repeats if n == rules - 1 else 0)
        await eventually(lambda fp=fingerprint, k=times: told(fp) >= k, what=f"the marker {fingerprint} told")


async def pass_sweeps(sessions: sessionmaker[Session], receiver, name: str, material: str, fingerprint: str) -> None:
    """Two late subscribers to an open breach, the second created once the first was told: each catch-up is a
    later sweep, so whatever an earlier sweep should not have sent would have been due, and sent, before it."""
    for n in (1, 2):
        path = f"/marker/{name}/{n}"
        with unit_of_work(sessions) as s:
            org = add_org(s, f"Marker {name} {n}")
            subscribe(s, org, [add_webhook(s, org, receiver.url(path))], material=material)
        await eventually(
            lambda p=path: (
                [a["fingerprint"] for r in receiver.delivered(p) for a in json.loads(r.body)["alerts"]] == [fingerprint]
            ),
            what=f"the catch-up at {path}",
        )
