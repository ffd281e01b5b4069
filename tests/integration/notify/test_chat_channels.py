"""Teams and Slack channels on the real broker and database: loopback receivers that answer as Microsoft's and
Slack's do (400 to a message of the wrong shape, 429 with Retry-After when busy) get the cards, with the signed
acknowledge link, evidence and the resolution; the outbound policy refuses a target at send time for good."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.notify.ack_links import AckClaim, UnsubscribeClaim, verify_ack_token, verify_unsubscribe_token
from services.notify.store import models
from services.notify.store.db import unit_of_work
from shared.events import BreachStatus, Severity
from tests.eventually import eventually
from tests.integration.notify.chat import add_chat
from tests.integration.notify.world import add_org, breach, notifier_settings, publish, running, subscribe

pytestmark = pytest.mark.integration


def attempts_of(db_sessions, channel_id: str) -> list[models.DeliveryAttempt]:
    with unit_of_work(db_sessions) as s:
        return list(
            s.scalars(
                select(models.DeliveryAttempt)
                .join(models.Notification)
                .where(models.Notification.channel_id == channel_id)
                .order_by(models.DeliveryAttempt.attempted_at)
            )
        )


async def test_teams_gets_an_adaptive_card_with_the_ack_link_and_then_the_resolution(
    settings, db_sessions, chat_receiver
):
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Ministerie BV", kind="company")
        teams = add_chat(s, org, "teams", chat_receiver.url("/teams/ops"))
        subscribe(s, org, [teams], material="gallium")
        org_id, teams_id = org.id, teams.id

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-teams", severity=Severity.CRITICAL, value=0.71))
        await eventually(lambda: chat_receiver.accepted("/teams/ops"), what="the firing card")
        await publish(settings, breach("fp-teams", severity=Severity.CRITICAL, value=0.2, status=BreachStatus.RESOLVED))
        await eventually(lambda: len(chat_receiver.accepted("/teams/ops")) == 2, what="the resolved card")

    firing, resolved = (m["attachments"][0]["content"] for m in chat_receiver.accepted("/teams/ops"))
    assert [status for *_, status in chat_receiver.to("/teams/ops")] == [202, 202]  # no shape was refused
    title = firing["body"][0]
    assert (title["text"], title["color"]) == (
        "[FIRING] Gallium: annualised price volatility 71.0% is above the critical threshold of 30.0%",
        "Attention",
    )
    facts = {f["title"]: f["value"] for f in firing["body"][2]["facts"]}
    assert (facts["Severity"], facts["Material"], facts["Rule"]) == ("critical", "gallium", "price_spike")
    assert facts["Threshold"] == "annualised price volatility 71.0% is above the critical threshold 30.0%"
    assert "[lme price](https://example.org/prices/ga)" in firing["body"][3]["text"]
    ack, manage, unsubscribe = firing["actions"]
    assert ack["type"] == manage["type"] == unsubscribe["type"] == "Action.OpenUrl"
    assert manage["url"] == "http://mews.test/console/subscriptions"
    left = verify_unsubscribe_token(settings.link_signing_key.get_secret_value(), unsubscribe["url"].rsplit("/", 1)[1])
    assert isinstance(left, UnsubscribeClaim)
    assert (left.channel_id, left.organisation_id) == (teams_id, org_id)
    claim = verify_ack_token(settings.link_signing_key.get_secret_value(), ack["url"].rsplit("/", 1)[1])
    assert isinstance(claim, AckClaim)
    assert claim.organisation_id == org_id
    assert resolved["body"][0]["text"].startswith("[RESOLVED] ")
    assert resolved["body"][0]["color"] == "Good"
    assert [a["title"] for a in resolved["actions"]] == ["Manage alerts", "Unsubscribe this channel"]  # no ack


async def test_slack_busy_answers_are_retried_no_sooner_than_retry_after_asks(settings, db_sessions, chat_receiver):
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Slack BV")
        slack = add_chat(s, org, "slack", chat_receiver.url("/slack/hook"))
        subscribe(s, org, [slack], material="gallium")
        channel_id = slack.id
    # Our own backoff in these settings is 0.2 to 0.4 s: the waits below can only come from Retry-After.
    chat_receiver.answer("/slack/hook", (429, {"retry-after": "1"}), (503, {"retry-after": "1"}))

    asked_before = REGISTRY.get_sample_value("mews_notify_delivery_retry_after_total", {"channel": "slack"}) or 0

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-slack"))
        await eventually(lambda: chat_receiver.accepted("/slack/hook"), what="delivery after 429 and 503")

    asked = REGISTRY.get_sample_value("mews_notify_delivery_retry_after_total", {"channel": "slack"})
    assert asked - asked_before == 2

    times = [at for at, *_ in chat_receiver.to("/slack/hook")]
    assert [status for *_, status in chat_receiver.to("/slack/hook")] == [429, 503, 200]
    assert all(later - earlier >= 0.95 for earlier, later in zip(times, times[1:], strict=False))
    assert [(a.outcome, a.status_code) for a in attempts_of(db_sessions, channel_id)] == [
        ("retry", 429),
        ("retry", 503),
        ("delivered", 200),
    ]
    [message] = chat_receiver.accepted("/slack/hook")
    assert message["text"] == (
        "[FIRING] Gallium: annualised price volatility 42.0% is above the warning threshold of 30.0%"
    )
    assert [b["type"] for b in message["blocks"]] == ["section", "section", "context", "actions"]
    [ack, _manage, unsubscribe] = message["blocks"][-1]["elements"]
    assert unsubscribe["url"].startswith("http://mews.test/v1/unsubscribe/")
    assert isinstance(
        verify_ack_token(settings.link_signing_key.get_secret_value(), ack["url"].rsplit("/", 1)[1]), AckClaim
    )


async def test_a_chat_target_the_outbound_policy_refuses_fails_at_once_and_is_never_contacted(
    kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox, db_sessions, chat_receiver
):
    strict = notifier_settings(
        kafka_bootstrap, kafka_topics, migrated_database_url, smtp_inbox, allow_private_webhook_targets=False
    )
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Loopback BV")
        teams = add_chat(s, org, "teams", chat_receiver.url("/teams/private"))  # 127.0.0.1: refused by policy
        subscribe(s, org, [teams], material="gallium")
        channel_id = teams.id

    async with running(strict, db_sessions):
        await publish(strict, breach("fp-private"))
        await eventually(lambda: attempts_of(db_sessions, channel_id), what="the refused attempt")

    assert chat_receiver.to("/teams/private") == []
    [attempt] = attempts_of(db_sessions, channel_id)
    assert attempt.outcome == "refused"
    assert attempt.error.startswith("target refused")
    with unit_of_work(db_sessions) as s:
        assert s.scalars(select(models.Notification.status)).all() == ["failed"]


async def test_a_chat_webhook_refusing_for_good_is_switched_off_at_once_a_rejected_card_fails_and_busy_ones_are_retried(
    settings, db_sessions, chat_receiver, smtp_inbox
):
    answers = {
        "/teams/forbidden": 403,
        "/teams/deleted": 404,
        "/slack/invalid": 400,
        "/slack/archived": 410,
        "/slack/timeout": 408,
        "/teams/busy": 429,
    }
    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Refused BV", admins=("admin@refused.test",))
        channels = {path: add_chat(s, org, path.split("/")[1], chat_receiver.url(path)) for path in answers}
        subscribe(s, org, list(channels.values()), material="gallium")
        ids = {path: channel.id for path, channel in channels.items()}
    for path, status in answers.items():
        chat_receiver.answer(path, (status, {}))

    async with running(settings, db_sessions):
        await publish(settings, breach("fp-refused"))
        await eventually(
            lambda: all(chat_receiver.accepted(p) for p in ("/slack/timeout", "/teams/busy")),
            what="the busy receivers' retries delivered",
        )
        await eventually(lambda: len(smtp_inbox.to("admin@refused.test")) == 3, what="three admin notices")
        await eventually(lambda: failed(db_sessions, ids["/slack/invalid"]), what="the rejected card failed")

    for path, status in answers.items():
        tried = [answered for *_, answered in chat_receiver.to(path)]
        with unit_of_work(db_sessions) as s:  # the admin notice rides on the channel's row: left out
            attempts = s.execute(
                select(models.DeliveryAttempt.outcome, models.DeliveryAttempt.status_code)
                .join(models.Notification)
                .where(models.Notification.channel_id == ids[path], models.Notification.kind != "admin_notice")
                .order_by(models.DeliveryAttempt.attempted_at)
            ).all()
            channel = s.get(models.Channel, ids[path])
            sent = s.scalars(
                select(models.Notification.status).where(
                    models.Notification.channel_id == channel.id, models.Notification.kind != "admin_notice"
                )
            ).all()
            enabled, reason = channel.enabled, channel.disabled_reason
        if status == 400:  # this card refused, not the channel: failed at once, the channel stays on
            assert tried == [status], path
            assert [tuple(a) for a in attempts] == [("rejected", status)], path
            assert (enabled, sent) == (True, ["failed"]), path
        elif status in (408, 429):
            accepted = 202 if path.startswith("/teams") else 200
            assert tried == [status, accepted], path
            assert [tuple(a) for a in attempts] == [("retry", status), ("delivered", accepted)], path
            assert (enabled, sent) == (True, ["delivered"]), path
        else:
            assert tried == [status], path  # never asked again
            assert [tuple(a) for a in attempts] == [("gone", status)], path
            assert (enabled, sent) == (False, ["cancelled"]), path
            assert reason.startswith(f"receiver answered {'' if status == 410 else 'HTTP '}{status}"), reason
            assert chat_receiver.url(path) not in reason
    notices = [m.get_body(("plain",)).get_content() for m in smtp_inbox.to("admin@refused.test")]
    assert sorted(next(i for i in ids.values() if i in text) for text in notices) == sorted(
        ids[p] for p, status in answers.items() if status not in (400, 408, 429)
    )


def failed(db_sessions, channel_id: str) -> bool:
    with unit_of_work(db_sessions) as s:
        return s.scalars(
            select(models.Notification.status).where(models.Notification.channel_id == channel_id)
        ).all() == ["failed"]
