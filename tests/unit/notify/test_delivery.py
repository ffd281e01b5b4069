"""Delivery pieces alone: the retry schedule, webhook signing and verdicts, email rendering in nl and en."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notify.delivery.email import SmtpConfig, build_message, render_email
from services.notify.delivery.retry import RetrySchedule, outage_backoff
from services.notify.delivery.webhook import classify_response, encode_body, signed_headers

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_backoff_doubles_from_thirty_seconds_and_caps_at_an_hour():
    schedule = RetrySchedule(initial=30, multiplier=2, max_interval=3600, jitter=0, max_attempts=12)
    assert [schedule.ceiling(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert schedule.delay(3) == timedelta(seconds=120)
    # 30+60+120+240+480+960+1920 = 3810 s, then four capped hours before the twelfth attempt
    assert schedule.span() == timedelta(seconds=3810 + 4 * 3600)
    assert not schedule.exhausted(11)
    assert schedule.exhausted(12)


def test_an_outage_backoff_doubles_to_its_cap_and_starts_again_after_a_success():
    backoff = outage_backoff(0.25, 10.0)
    assert [backoff.next() for _ in range(8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 0.25


def test_full_jitter_spreads_delays_between_zero_and_the_ceiling():
    schedule = RetrySchedule(initial=30, jitter=1.0)
    delays = [schedule.delay(4, random.Random(seed)).total_seconds() for seed in range(200)]
    assert all(0 <= d < 240 for d in delays)
    assert max(delays) - min(delays) > 120  # spread, not one value


def test_signed_webhook_verifies_with_the_standardwebhooks_library_and_fails_when_tampered():
    body = encode_body({"status": "firing", "alerts": [{"material": "gallium"}]})
    headers = signed_headers(SECRET, "msg_1", datetime.now(UTC), body)
    assert headers["webhook-id"] == "msg_1"
    assert Webhook(SECRET).verify(body, headers) == {"status": "firing", "alerts": [{"material": "gallium"}]}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"gallium", b"germanium"), headers)


def test_body_bytes_are_identical_for_equal_payloads_whatever_the_key_order():
    assert encode_body({"b": 1, "a": [2]}) == encode_body({"a": [2], "b": 1}) == b'{"a":[2],"b":1}'


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "delivered"), (204, "delivered"), (410, "gone"), (500, "retry"), (429, "retry"), (404, "retry")],
)
def test_receiver_answers_map_to_delivered_gone_or_retry(status, outcome):
    assert classify_response(httpx.Response(status)).outcome == outcome


def test_redirect_is_a_failure_that_names_where_it_pointed():
    verdict = classify_response(httpx.Response(302, headers={"location": "https://elsewhere.test/x"}))
    assert verdict.outcome == "retry"
    assert "https://elsewhere.test/x" in verdict.error


PAYLOAD = {
    "kind": "alert",
    "status": "firing",
    "alerts": [
        {
            "id": "a1",
            "fingerprint": "fp",
            "material": "gallium",
            "rule": "price_spike",
            "severity": "critical",
            "status": "firing",
            "indicator": "price_volatility",
            "value": 0.71,
            "threshold": 0.6,
            "starts_at": "2026-03-02T10:00:00+00:00",
            "ends_at": None,
            "summary": "Gallium doubled",
            "evidence": [
                {
                    "kind": "price",
                    "source": "<b>lme</b>",
                    "time": "2026-03-02T09:00:00+00:00",
                    "value": 812.5,
                    "url": "https://example.org/ga",
                }
            ],
            "via": ["product:Radar module>GaN chip"],
        }
    ],
}
LINKS = {"manage": "https://mews.test/docs", "ack:a1": "https://mews.test/v1/ack/tok"}


def test_english_email_says_what_why_since_when_and_how_to_acknowledge():
    mail = render_email("alert", PAYLOAD, "en", LINKS)
    assert mail.subject == "[mews] CRITICAL gallium: price_spike"
    for words in (
        "Value: 71.0% against threshold 60.0%",
        "Since: 2 March 2026 10:00 UTC",
        "product Radar module > GaN chip",
        "https://example.org/ga",
        "Acknowledge: https://mews.test/v1/ack/tok",
        "Manage your subscription: https://mews.test/docs",
    ):
        assert words in mail.text
    assert "&lt;b&gt;lme&lt;/b&gt;" in mail.html  # HTML-escaped, no markup injection


def test_dutch_email_is_in_dutch():
    mail = render_email("alert", PAYLOAD, "nl", LINKS)
    assert mail.subject == "[mews] KRITIEK gallium: price_spike"
    assert "Waarde: 71,0 % tegen drempel 60,0 %" in mail.text
    assert "Deze melding bevestigen" in mail.html


def test_resolved_email_offers_no_acknowledge_link():
    resolved = {
        **PAYLOAD,
        "kind": "resolved",
        "status": "resolved",
        "alerts": [{**PAYLOAD["alerts"][0], "status": "resolved", "ends_at": "2026-03-02T12:00:00+00:00"}],
    }
    mail = render_email("resolved", resolved, "en", LINKS)
    assert mail.subject == "[mews] RESOLVED gallium: price_spike"
    assert "Acknowledge" not in mail.text


def test_message_carries_text_and_html_and_a_stable_message_id():
    config = SmtpConfig("127.0.0.1", 25, "mews <alerts@mews.test>", password="hunter2")
    msg = build_message(
        config, ["ops@x.test"], render_email("alert", PAYLOAD, "en", LINKS), "msg_42", datetime(2026, 3, 2, tzinfo=UTC)
    )
    assert msg["Message-ID"] == "<msg_42@mews>"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert "hunter2" not in repr(config)
