"""Webhook client: POST the notification as JSON, signed per Standard Webhooks, never following redirects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from services.notify.delivery.outcome import Outcome
from services.notify.outbound import names_an_address

USER_AGENT = "mews-notify/1"
TargetCheck = Callable[[str], str | None]  # URL -> None when allowed, else the reason it is refused


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


async def checked(check_target: TargetCheck, url: str, resolver: Executor | None = None) -> str | None:
    """The target check, in a thread of `resolver` when it has to ask DNS (the loop never waits on a resolver)."""
    if names_an_address(url):
        return check_target(url)
    return await asyncio.get_running_loop().run_in_executor(resolver, check_target, url)


async def deliver_webhook(client: httpx.AsyncClient, url: str, secret: str, webhook_id: str,
                          payload: dict[str, Any], now: datetime, check_target: TargetCheck,
                          resolver: Executor | None = None) -> Outcome:
    """Check the target again, sign and POST one notification; never raises."""
    refusal = await checked(check_target, url, resolver)
    if refusal is not None:
        return Outcome("refused", None, f"target refused: {refusal}")
    body = encode_body(payload)
    try:
        response = await client.post(url, content=body, headers=signed_headers(secret, webhook_id, now, body),
                                     follow_redirects=False)
    except httpx.TimeoutException as exc:
        return Outcome("retry", None, f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Outcome("retry", None, f"{type(exc).__name__}: {exc}"[:500])
    return classify_response(response)
