"""A test message to one channel, sent at once and answered on the page, the way a receiver is checked before
real alerts depend on it.

A webhook gets a notification signed like every other (Standard Webhooks, the channel's secret, the outbound
policy's pinned client, no redirects) whose `kind` is `test` and whose `alerts` is empty; an email channel gets a
short message through the configured SMTP server; a Teams or Slack channel gets a card from the same builders as
its alerts (title only, with the manage link), through the same client and policy. Nothing goes through the outbox,
so a test never counts towards a channel's failures or disables it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from services.notify.ack_links import manage_url
from services.notify.delivery.email import RenderedEmail, build_message, deliver_email
from services.notify.delivery.outbox import CHAT_MESSAGES, DeliveryLimits
from services.notify.delivery.outcome import Outcome
from services.notify.delivery.payload import PAYLOAD_VERSION
from services.notify.delivery.webhook import deliver_chat, deliver_webhook
from services.notify.outbound import check_send_target
from services.notify.settings import NotifySettings
from services.notify.store.models import Channel
from services.notify.worker import smtp_from, webhook_client

TESTABLE_KINDS = ("webhook", "email", *CHAT_MESSAGES)
_EMAIL = {
    "en": (
        "mews: test message",
        "This is a test message from mews for this address. Alerts you subscribe to will arrive like this one.",
    ),
    "nl": (
        "mews: testbericht",
        "Dit is een testbericht van mews voor dit adres. Meldingen waarop u geabonneerd bent komen net zo binnen.",
    ),
}


def probe_payload(organisation_id: str, channel_id: str, now: datetime) -> dict:
    """The body of a test webhook: the notification envelope with kind `test` and no alerts."""
    return {
        "version": PAYLOAD_VERSION,
        "kind": "test",
        "status": "test",
        "organisation_id": organisation_id,
        "group_key": f"test:{channel_id}",
        "scheduled_at": now.isoformat(),
        "alerts": [],
    }


async def send_probe(settings: NotifySettings, channel: Channel, now: datetime) -> Outcome:
    """Send a test message to the channel now; the outcome as the outbox would record it (never raises)."""

    def check_target(url: str) -> str | None:
        verdict = check_send_target(
            url, require_https=settings.require_https_webhooks, allow_private=settings.allow_private_webhook_targets
        )
        return None if verdict.allowed else verdict.reason

    payload = probe_payload(channel.organisation_id, channel.id, now)
    if channel.kind == "webhook":
        async with webhook_client(settings, DeliveryLimits(concurrency=1, per_target=1)) as client:
            return await deliver_webhook(
                client, channel.target, channel.secret or "", f"msg_{uuid.uuid4().hex}", payload, now, check_target
            )
    if channel.kind in CHAT_MESSAGES:
        card = CHAT_MESSAGES[channel.kind](
            payload, {"manage": manage_url(settings, channel.organisation_id)}, channel.language, channel.timezone
        )
        async with webhook_client(settings, DeliveryLimits(concurrency=1, per_target=1)) as client:
            return await deliver_chat(client, channel.target, card, check_target)
    if channel.kind == "email":
        subject, text = _EMAIL["nl" if channel.language == "nl" else "en"]
        config = smtp_from(settings)
        message = build_message(
            config, [channel.target], RenderedEmail(subject, text, f"<p>{text}</p>"), f"test-{uuid.uuid4().hex}", now
        )
        return await deliver_email(config, message)
    return Outcome("refused", None, f"{channel.kind} channels are not test-sent")
