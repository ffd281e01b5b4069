"""Repeated failed authentications are throttled (429 with Retry-After) per address and per key prefix, while a
valid key keeps working; /metrics can demand a token or move to a port of its own."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from shared.metrics import serve_metrics_port
from shared.settings import CommonSettings
from shared.throttle import AuthThrottle

from .apps import INGEST_KEY, READ_KEY, ingest_app, new_organisation, notify_app, scoring_app

LIMIT = 5
TOKEN = "3f1c9a7e5b2d4f60a8c1e3b5d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f5"


def refusal(throttle: AuthThrottle, address: str, presented: str | None) -> HTTPException:
    request = SimpleNamespace(client=SimpleNamespace(host=address))
    with pytest.raises(HTTPException) as refused:
        throttle.refuse(request, presented)  # type: ignore[arg-type]
    return refused.value


def test_an_address_is_throttled_after_the_limit_until_its_window_ends() -> None:
    now = [1000.0]
    throttle = AuthThrottle("test", limit=LIMIT, window_seconds=60, clock=lambda: now[0])
    assert [refusal(throttle, "10.0.0.1", f"guess-{i:040d}").status_code for i in range(LIMIT)] == [401] * LIMIT
    now[0] += 15
    throttled = refusal(throttle, "10.0.0.1", "guess-another-one-entirely")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "45"
    assert refusal(throttle, "10.0.0.2", "a-guess-from-elsewhere").status_code == 401
    now[0] += 46
    assert refusal(throttle, "10.0.0.1", "guess-after-the-window").status_code == 401


def test_a_key_prefix_is_throttled_across_addresses() -> None:
    throttle = AuthThrottle("test", limit=LIMIT, window_seconds=60)
    target = "mews_AbCdEfGh"  # the prefix a notify key is looked up by
    for i in range(LIMIT):
        assert refusal(throttle, f"10.1.0.{i}", f"{target}{i:030d}").status_code == 401
    assert refusal(throttle, "10.1.0.99", f"{target}-yet-another-guess").status_code == 429


def test_a_request_without_a_key_is_refused_but_not_counted() -> None:
    throttle = AuthThrottle("test", limit=1, window_seconds=60)
    assert {refusal(throttle, "10.2.0.1", None).status_code for _ in range(10)} == {401}


def ingest_client(tmp_path: Path) -> tuple[TestClient, str]:
    return TestClient(ingest_app("127.0.0.1:1", "", tmp_path, auth_failure_limit=LIMIT)), INGEST_KEY


def scoring_client(tmp_path: Path) -> tuple[TestClient, str]:
    return TestClient(scoring_app(auth_failure_limit=LIMIT)), READ_KEY


def notify_client(tmp_path: Path) -> tuple[TestClient, str]:
    client = TestClient(notify_app(tmp_path / "notify.db", auth_failure_limit=LIMIT))
    return client, new_organisation(client)["api_key"]


@pytest.mark.parametrize(
    ("make", "path"),
    [(ingest_client, "/v1/sources"), (scoring_client, "/v1/risk"), (notify_client, "/v1/alerts")],
    ids=["ingest", "scoring", "notify"],
)
def test_bad_keys_get_429_and_a_valid_key_from_the_same_address_still_works(tmp_path, make, path) -> None:
    client, valid = make(tmp_path)
    statuses = [
        client.get(path, headers={"Authorization": f"Bearer mews_bad{i:040d}"}).status_code for i in range(LIMIT + 3)
    ]
    assert statuses == [401] * LIMIT + [429] * 3
    throttled = client.get(path, headers={"Authorization": "Bearer mews_badagain"})
    assert int(throttled.headers["retry-after"]) >= 1
    assert throttled.headers["content-type"] == "application/problem+json"
    assert client.get(path, headers={"Authorization": f"Bearer {valid}"}).status_code == 200


def test_metrics_can_require_a_token() -> None:
    client = TestClient(scoring_app(metrics_token=TOKEN))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert "mews_build_info" in answer.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_can_move_to_a_port_of_their_own() -> None:
    port = free_port()
    client = TestClient(scoring_app(metrics_port=port))
    assert client.get("/metrics").status_code == 404
    stop = serve_metrics_port(CommonSettings(metrics_port=port))
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        stop()
    assert answer.status_code == 200
    assert "mews_build_info" in answer.text
