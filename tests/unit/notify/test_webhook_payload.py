"""The webhook payload is a contract with every receiver: its fields, their types, and a stored example.

A change that makes `test_payload_matches_the_stored_example` fail changes what receivers get: update
tests/fixtures/notify/webhook_payload_v1.json on purpose, and bump the version if a meaning changed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.notify.delivery.payload import PAYLOAD_VERSION, localised_payload, notification_payload
from services.notify.delivery.webhook import encode_body
from services.notify.pipeline.alert import Alert
from services.notify.store import models
from services.notify.store.alert_state import alert_from_row
from shared.events import BreachRaised, BreachStatus, Classification, Evidence, Severity

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "notify" / "webhook_payload_v1.json"
OBSERVED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
STARTED = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def alert_row(
    alert_id: str, fingerprint: str, status: BreachStatus = BreachStatus.FIRING, acknowledged: bool = False
) -> Alert:
    """An alert as dispatch reads it back from its row: the breach as JSON, its columns beside."""
    breach = BreachRaised(
        fingerprint=fingerprint,
        material="gallium",
        rule="price-volatility",
        indicator="price_volatility",
        severity=Severity.CRITICAL,
        status=status,
        value=0.71,
        warning_threshold=0.3,
        critical_threshold=0.6,
        clear_threshold=0.25,
        threshold=0.6 if status == BreachStatus.FIRING else 0.25,
        starts_at=STARTED,
        ends_at=OBSERVED if status == BreachStatus.RESOLVED else None,
        observed_at=OBSERVED,
        summary="gallium price volatility 0.71 above 0.60",
        evidence=[
            Evidence(
                id="ev-1", source="lme", kind="price", time=OBSERVED, value=812.5, url="https://example.org/prices/ga"
            )
        ],
        classification=Classification.RESTRICTED,
        parameter="price_volatility",
    )
    return alert_from_row(
        models.Alert(
            id=alert_id,
            organisation_id="org-1",
            fingerprint=fingerprint,
            material="gallium",
            rule="price-volatility",
            severity="critical",
            status=status.value,
            starts_at=STARTED,
            ends_at=breach.ends_at,
            summary=breach.summary,
            breach=breach.model_dump(mode="json"),
            classification="restricted",
            via=["material:gallium", "product:Radar module>GaN chip"],
            acknowledged_at=datetime(2026, 3, 2, 9, 45, tzinfo=UTC) if acknowledged else None,
        )
    )


def example_group() -> dict:
    """The body a Dutch receiver in Amsterdam gets for one firing and one resolved alert of a group, as the bytes
    on the wire."""
    rows = [
        alert_row("alert-1", "fp-ga-spike", acknowledged=True),
        alert_row("alert-2", "fp-ga-old", status=BreachStatus.RESOLVED),
    ]
    _, payload = notification_payload(
        "org-1", "immediate:chan-1:gallium", rows, datetime(2026, 3, 2, 9, 30, 5, tzinfo=UTC)
    )
    return json.loads(encode_body(localised_payload(payload, "nl", "Europe/Amsterdam")))


def test_payload_matches_the_stored_example():
    assert example_group() == json.loads(EXAMPLE.read_text()), (
        "the webhook payload changed: update the stored example deliberately (and the version, if a meaning did)"
    )


NUMBER = (int, float)
TOP_LEVEL = {
    "version": str,
    "kind": str,
    "status": str,
    "organisation_id": str,
    "group_key": str,
    "scheduled_at": str,
    "alerts": list,
}
ALERT_FIELDS = {
    "id": (str,),
    "fingerprint": (str,),
    "material": (str,),
    "rule": (str,),
    "severity": (str,),
    "status": (str,),
    "classification": (str,),
    "indicator": (str, type(None)),
    "parameter": (str,),
    "value": (*NUMBER, type(None)),
    "threshold": (*NUMBER, type(None)),
    "warning_threshold": (*NUMBER, type(None)),
    "critical_threshold": (*NUMBER, type(None)),
    "starts_at": (str,),
    "ends_at": (str, type(None)),
    "observed_at": (str, type(None)),
    "summary": (str,),
    "evidence": (list,),
    "via": (list,),
    "acknowledged_at": (str, type(None)),
    "open_since": (str, type(None)),
    "language": (str,),
    "summary_localised": (str,),
    "rule_localised": (str,),
    "rule_description_localised": (str,),
}


def test_every_field_is_present_with_its_type():
    body = example_group()
    assert set(body) == set(TOP_LEVEL)
    for name, kind in TOP_LEVEL.items():
        assert isinstance(body[name], kind), name
    assert body["version"] == PAYLOAD_VERSION == "1"
    for alert in body["alerts"]:
        assert set(alert) == set(ALERT_FIELDS)
        for name, kinds in ALERT_FIELDS.items():
            assert isinstance(alert[name], kinds), (name, alert[name])
        for moment in ("starts_at", "ends_at", "observed_at", "acknowledged_at"):
            if alert[moment] is not None:
                assert datetime.fromisoformat(alert[moment]).utcoffset() is not None, moment  # aware, never naive
        assert all({"id", "source", "kind", "time", "value", "url"} <= set(e) for e in alert["evidence"])


def test_alerts_keep_the_order_of_the_group():
    assert [a["id"] for a in example_group()["alerts"]] == ["alert-1", "alert-2"]


@pytest.mark.parametrize(
    ("group_key", "statuses", "kind", "status"),
    [
        ("immediate:c:gallium", [BreachStatus.FIRING, BreachStatus.RESOLVED], "alert", "firing"),
        ("immediate:c:gallium", [BreachStatus.RESOLVED], "resolved", "resolved"),
        ("digest:c:2026-03-02", [BreachStatus.RESOLVED], "digest", "resolved"),
        ("digest:c:2026-03-02", [BreachStatus.FIRING], "digest", "firing"),
    ],
)
def test_kind_and_status_follow_the_group_and_its_alerts(group_key, statuses, kind, status):
    rows = [alert_row(f"a{n}", f"fp{n}", s) for n, s in enumerate(statuses)]
    got_kind, payload = notification_payload("org-1", group_key, rows, OBSERVED)
    assert (got_kind, payload["kind"], payload["status"]) == (kind, kind, status)


def test_an_alert_caught_up_says_since_when_in_its_summary_and_a_field():
    caught_up = alert_row("alert-3", "fp-ga-open").evolve(open_since=STARTED)
    _, payload = notification_payload("org-1", "immediate:chan-1:gallium", [caught_up], OBSERVED)
    alert = json.loads(encode_body(payload))["alerts"][0]
    assert alert["open_since"] == "2026-03-02T08:30:00+00:00"
    assert alert["summary"] == "Open since 2026-03-02 08:30 UTC. gallium price volatility 0.71 above 0.60"


def test_a_webhook_carries_the_summary_in_its_channel_language_beside_the_english_one():
    caught_up = alert_row("alert-3", "fp-ga-open").evolve(open_since=STARTED)
    _, payload = notification_payload("org-1", "immediate:chan-1:gallium", [caught_up], OBSERVED)
    dutch = localised_payload(payload, "nl", "Europe/Amsterdam")["alerts"][0]
    assert dutch["summary"].startswith("Open since 2026-03-02 08:30 UTC. ")  # the machine field, unchanged
    assert (dutch["language"], dutch["summary_localised"]) == (
        "nl",
        (
            "Open sinds 2 maart 2026 09:30 CET. Gallium: jaarlijkse prijsvolatiliteit 71,0 % ligt boven de drempel "
            "voor kritiek van 60,0 %"
        ),
    )
    english = localised_payload(payload, "en")["alerts"][0]
    assert english["summary_localised"] == (
        "Open since 2 March 2026 08:30 UTC. Gallium: annualised price volatility 71.0% is above the critical "
        "threshold of 60.0%"
    )
    assert payload["alerts"][0].keys() <= dutch.keys()  # nothing removed
