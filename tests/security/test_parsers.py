"""Hostile bodies and links answer 4xx with a reason, never 500: the ingest push API and the acknowledgement link."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.notify.ack_links import sign_ack_token, verify_ack_token

from .apps import INGEST_KEY, ingest_app, new_organisation, notify_app

AUTH = {"Authorization": f"Bearer {INGEST_KEY}"}
DEEP = b'{"items": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
HUGE_INTEGER = b'{"items": [{"material": "gallium", "price": ' + b"9" * 5000 + b"}]}"
HOSTILE = {
    "nested 100,000 deep": DEEP,
    "an integer of 5,000 digits": HUGE_INTEGER,
    "an integer of 4,301 digits at the top": b'{"items": [], "n": ' + b"1" * 4301 + b"}",
    "not UTF-8": b'{"items": ["\xff\xfe"]}',
    "truncated": b'{"items": [',
    "NaN is not JSON's": b'{"items": [NaN',
}


@pytest.fixture(scope="module")
def ingest(tmp_path_factory) -> TestClient:
    # Without its lifespan, so without Kafka: a refused body never gets as far as publishing.
    return TestClient(ingest_app("127.0.0.1:1", "", tmp_path_factory.mktemp("ingest")))


@pytest.mark.parametrize("body", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("route", ["/v1/prices", "/v1/news", "/v1/trade", "/v1/leadtimes"])
def test_a_hostile_push_body_is_a_4xx_with_a_reason(ingest, route: str, body: bytes) -> None:
    answer = ingest.post(route, content=body, headers=AUTH | {"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text
    problem = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert problem["status"] == answer.status_code
    assert problem["detail"]


def test_depth_and_digits_are_named_in_the_reason(ingest) -> None:
    assert "nested too deeply" in ingest.post("/v1/prices", content=DEEP, headers=AUTH).json()["detail"]
    assert "digits" in ingest.post("/v1/prices", content=HUGE_INTEGER, headers=AUTH).json()["detail"]


@pytest.fixture(scope="module")
def notify(tmp_path_factory):
    with TestClient(notify_app(tmp_path_factory.mktemp("notify") / "notify.db")) as client:
        client.headers["Authorization"] = f"Bearer {new_organisation(client)['api_key']}"
        yield client


@pytest.mark.parametrize("body", [DEEP, b'{"name": ' + b"9" * 5000 + b"}"], ids=["deep", "huge integer"])
def test_notify_bodies_are_refused_as_4xx_too(notify, body: bytes) -> None:
    answer = notify.post("/v1/products", content=body, headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text


def _signed(key: str, alert: str, organisation: str, expires: str) -> str:
    """A token signed with the real key but carrying any expiry text (what a key holder could mint)."""
    mac = hmac.new(key.encode(), f"ack|{alert}|{organisation}|{expires}".encode(), hashlib.sha256).digest()
    return f"{alert}.{organisation}.{expires}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


KEY = "k" * 40
LINKS = {
    "a superscript digit": "a.b.%C2%B2.c",
    "5,000 digits of expiry": "a.b." + "9" * 5000 + ".c",
    "a signed expiry of 10^20": _signed(KEY, "a", "b", str(10**20)),
    "a signed expiry past year 9999": _signed(KEY, "a", "b", "253402300800"),
    "Arabic-Indic digits": "a.b.%D9%A1%D9%A2.c",
    "a sign": "a.b.-5.c",
}


@pytest.mark.parametrize("token", list(LINKS.values()), ids=list(LINKS))
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_hostile_acknowledgement_link_is_refused_not_a_crash(tmp_path, token: str, method: str) -> None:
    with TestClient(notify_app(tmp_path / "notify.db", link_signing_key=KEY)) as client:
        answer = client.request(method, f"/v1/ack/{token}")
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"].startswith("link refused")


@pytest.mark.parametrize("expires", ["²", "١٢", "9" * 5000, str(10**20), "-5", "+5", " 5", ""])
def test_the_token_parser_takes_only_ascii_digits_within_bounds(expires: str) -> None:
    assert verify_ack_token(KEY, _signed(KEY, "a", "b", expires)) == "malformed token"


def test_a_valid_token_still_verifies() -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    claim = verify_ack_token(KEY, sign_ack_token(KEY, "alert", "org", expires))
    assert not isinstance(claim, str)
    assert claim.alert_id == "alert"
