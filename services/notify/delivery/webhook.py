"""Webhook client: POST the notification as JSON, signed per Standard Webhooks, never following redirects.

The client must be built on shared/outbound.py's pinned transport: it checks the receiver's addresses when it
connects and raises TargetRefused instead of connecting to one the policy refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from services.notify.delivery.outcome import Outcome
from shared.outbound import TargetRefused

USER_AGENT = "mews-notify/1"
TargetCheck = Callable[[str], str | None]  # URL -> None when allowed, else the reason; never asks DNS


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent (sorted keys, so retries send identical bodies)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def signed_headers(secret: str, webhook_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; `webhook-id` is the notification's, so retries keep it."""
    signature = Webhook(secret).sign(webhook_id, timestamp, body.decode())
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature, "content-type": "application/json", "user-agent": USER_AGENT}


def classify_response(response: httpx.Response) -> Outcome:
    """2xx delivered; 410 gone; 3xx a failure naming where it pointed; everything else retried."""
    code = response.status_code
    if 200 <= code < 300:
        return Outcome("delivered", code)
    if code == 410:
        return Outcome("gone", code, "410 Gone: the receiver asked us to stop")
    if 300 <= code < 400:
        return Outcome("retry", code, f"redirect {code} to {response.headers.get('location', '?')} not followed")
    return Outcome("retry", code, f"HTTP {code}")


async def deliver_webhook(client: httpx.AsyncClient, url: str, secret: str, webhook_id: str,
                          payload: dict[str, Any], now: datetime, check_target: TargetCheck) -> Outcome:
    """Check the target again, sign and POST one notification; never raises."""
    refusal = check_target(url)
    if refusal is not None:
        return Outcome("refused", None, f"target refused: {refusal}")
    body = encode_body(payload)
    try:
        response = await client.post(url, content=body, headers=signed_headers(secret, webhook_id, now, body),
                                     follow_redirects=False)
    except TargetRefused as exc:
        return Outcome("refused", None, f"target refused: {exc.refusal.detail}")
    except httpx.TimeoutException as exc:
        return Outcome("retry", None, f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Outcome("retry", None, f"{type(exc).__name__}: {exc}"[:500])
    return classify_response(response)
