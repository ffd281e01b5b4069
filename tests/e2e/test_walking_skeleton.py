"""A price posted to the ingest API becomes a signed webhook at a subscriber, through the real broker.

The stack is the one `make run` starts (deploy/local/stack.py): three service processes on 127.0.0.1.
"""

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from standardwebhooks import Webhook

from deploy.local.stack import DEMO_INGEST_KEY, DEMO_READ_KEY, Ports, Stack
from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Receiver:
    """A real HTTP receiver that keeps every delivery with its headers."""

    def __init__(self) -> None:
        self.deliveries: queue.Queue = queue.Queue()
        inbox = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                inbox.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_alert(self, rule: str, timeout: float = 60) -> tuple[dict, bytes]:
        """The next delivery that carries an alert of the given rule."""
        while True:
            headers, body = self.deliveries.get(timeout=timeout)
            if any(alert["rule"] == rule for alert in json.loads(body)["alerts"]):
                return headers, body


@pytest.fixture
def stack(kafka_bootstrap, namespace, tmp_path):
    ports = Ports(ingest=free_port(), scoring=free_port(), notify=free_port())
    with Stack(state_dir=tmp_path, kafka_bootstrap=kafka_bootstrap, namespace=namespace, ports=ports) as running:
        yield running


def test_price_jump_reaches_the_subscriber_as_a_signed_webhook_with_its_evidence(stack):
    receiver = Receiver()
    tenant = stack.provision_demo(receiver.url)
    prices = [
        {"material": "gallium", "price": 300, "currency": "USD", "unit": "kg", "observed_at": "2026-11-20T00:00:00Z"},
        {"material": "gallium", "price": 450, "currency": "USD", "unit": "kg", "observed_at": "2026-11-21T00:00:00Z"},
    ]
    answer = httpx.post(
        f"{stack.url('ingest')}/v1/prices",
        json={"items": prices},
        headers={"Authorization": f"Bearer {DEMO_INGEST_KEY}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 2

    headers, body = receiver.next_alert("price-change-1d")

    payload = Webhook(tenant.webhook_secret).verify(body, headers)  # raises if the signature is wrong
    with pytest.raises(Exception, match="(?i)signature"):
        Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=").verify(body, headers)
    alert = next(a for a in payload["alerts"] if a["rule"] == "price-change-1d")
    assert alert["material"] == "gallium"
    assert alert["severity"] == "critical"
    assert alert["status"] == "firing"
    assert alert["value"] == pytest.approx(50.0)
    assert alert["threshold"] == pytest.approx(40.0)
    assert alert["via"] == ["product:X-band radar module>GaN power amplifier"]
    assert sorted(e["value"] for e in alert["evidence"] if e["kind"] == "price") == [300.0, 450.0]
    assert "Gallium" in alert["summary"]

    # The read API and the crisis view tell the same story.
    risk = httpx.get(
        f"{stack.url('scoring')}/v1/materials/gallium", headers={"Authorization": f"Bearer {DEMO_READ_KEY}"}, timeout=10
    ).json()
    assert any(b["rule"] == "price-change-1d" for b in risk["open_breaches"])
    exposure = httpx.get(
        f"{stack.url('notify')}/v1/exposure",
        params={"material": "gallium"},
        headers={"Authorization": f"Bearer {tenant.ministry_key}"},
        timeout=10,
    )
    assert exposure.status_code == 200, exposure.text
    assert "Demo Radar Systems B.V." in exposure.text

    # Each service as its launcher serves it: the security headers, and no `server: uvicorn` banner.
    for service in ("ingest", "scoring", "notify"):
        probe = httpx.get(f"{stack.url(service)}/healthz", timeout=10)
        assert "server" not in probe.headers, service
        assert probe.headers["x-frame-options"] == "DENY"
        assert probe.headers["cache-control"] == "no-store"
