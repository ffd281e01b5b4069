"""Webhook client: POST the notification as JSON, signed per Standard Webhooks, never following redirects.

Teams and Slack channels go through the same POST, unsigned (their URL is the secret) and with the card that
delivery/payload.py builds as the body.

The client must be built on shared/outbound.py's pinned transport: it checks the receiver's addresses when it
connects and raises TargetRefused instead of connecting to one the policy refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from services.notify.delivery.outcome import Outcome
from services.notify.outbound import masked_url
from shared.outbound import TargetRefused

USER_AGENT = "mews-notify/1"
TargetCheck = Callable[[str], str | None]  # URL -> None when allowed, else the reason; never asks DNS
RETRY_AFTER_CAP = 3600.0  # a receiver asking for longer is tried again after an hour
# What Teams Workflows and Slack answer for a webhook that will never take a message again: Slack's
# invalid_token / action_prohibited, channel_not_found, channel_is_archived / no_service; a deleted or disabled
# workflow. Retrying them only repeats the answer; 408 and 429 are not among them.
CHAT_GONE = frozenset({403, 404, 410})
# A 400 (Slack's invalid_payload, a card Teams cannot read) refuses this message, not the channel: the message
# fails at once, the channel stays on (repeated failures still switch it off).
CHAT_REJECTED = 400


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent (sorted keys, so retries send identical bodies)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def signed_headers(secret: str, webhook_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; `webhook-id` is the notification's, so retries keep it."""
    signature = Webhook(secret).sign(webhook_id, timestamp, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The wait a 429 or 503 asks for, in seconds (delay-seconds or an HTTP date), at most RETRY_AFTER_CAP."""
    value = response.headers.get("retry-after", "").strip()
    if not value or response.status_code not in (429, 503):
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - (now or datetime.now(UTC))).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(RETRY_AFTER_CAP, max(0.0, seconds)) if seconds == seconds else None  # NaN is no answer


def classify_response(response: httpx.Response) -> Outcome:
    """2xx delivered; 410 gone; 3xx a failure naming where it pointed; everything else retried (after the
    Retry-After of a 429 or 503 when it gives one)."""
    code = response.status_code
    if 200 <= code < 300:
        return Outcome("delivered", code)
    if code == 410:
        return Outcome("gone", code, "410 Gone: the receiver asked us to stop")
    if 300 <= code < 400:
        return Outcome("retry", code, f"redirect {code} to {response.headers.get('location', '?')} not followed")
    wait = retry_after(response)
    return Outcome(
        "retry", code, f"HTTP {code}" + (f", Retry-After {wait:g} s" if wait is not None else ""), retry_after=wait
    )


async def deliver_webhook(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    webhook_id: str,
    payload: dict[str, Any],
    now: datetime,
    check_target: TargetCheck,
) -> Outcome:
    """Check the target again, sign and POST one notification; never raises."""
    body = encode_body(payload)
    return await post_json(client, url, body, signed_headers(secret, webhook_id, now, body), check_target)


async def deliver_chat(
    client: httpx.AsyncClient, url: str, message: dict[str, Any], check_target: TargetCheck
) -> Outcome:
    """POST a Teams or Slack message to its webhook URL; never raises, and never repeats the URL in an error.

    A refusal for good (CHAT_GONE) is `gone`, as a webhook's 410: the channel is switched off at once and its
    admins told; a 400 is `rejected`: this message failed, never retried. Neither is sent again and again.
    """
    outcome = await post_json(
        client, url, encode_body(message), {"content-type": "application/json", "user-agent": USER_AGENT}, check_target
    )
    if outcome.outcome == "retry" and outcome.status_code in CHAT_GONE:
        outcome = Outcome(
            "gone", outcome.status_code, f"HTTP {outcome.status_code}: the chat webhook refuses messages for good"
        )
    elif outcome.outcome == "retry" and outcome.status_code == CHAT_REJECTED:
        outcome = Outcome(
            "rejected", outcome.status_code, f"HTTP {outcome.status_code}: the chat webhook refused this message"
        )
    if outcome.error and url in outcome.error:
        outcome = replace(outcome, error=outcome.error.replace(url, masked_url(url)))
    return outcome


async def post_json(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], check_target: TargetCheck
) -> Outcome:
    """Check the target again and POST the body, never following a redirect; never raises."""
    refusal = check_target(url)
    if refusal is not None:
        return Outcome("refused", None, f"target refused: {refusal}")
    try:
        response = await client.post(url, content=body, headers=headers, follow_redirects=False)
    except TargetRefused as exc:
        return Outcome("refused", None, f"target refused: {exc.refusal.detail}")
    except httpx.TimeoutException as exc:
        return Outcome("retry", None, f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Outcome("retry", None, f"{type(exc).__name__}: {exc}"[:500])
    return classify_response(response)
