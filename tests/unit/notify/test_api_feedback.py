"""Feedback on alerts through the real app on a migrated database: members give it, it is listed on the alert
and counted, admins mute from it, other organisations see a 404, government operators export classifier cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from services.notify.store.models import Alert
from tests.security.apps import BOOTSTRAP, new_organisation, notify_app

NEWS = {
    "id": "news-1",
    "source": "rss:mofcom",
    "kind": "news",
    "time": "2026-11-20T00:00:00+00:00",
    "value": "CN export_licence",
    "url": "https://example.org/mofcom-23",
    "classification": "public",
}
SIGNAL = {
    "id": "news-2",
    "source": "rss:wire",
    "kind": "news",
    "time": "2026-11-21T00:00:00+00:00",
    "value": "leadtime, lead time 126 days: Gallium lead times stretch to eighteen weeks",
    "url": "https://example.org/wire-7",
    "classification": "public",
}
PRICE = {
    "id": "price-1",
    "source": "api:lme",
    "kind": "price",
    "time": "2026-11-20T00:00:00+00:00",
    "value": 312.5,
    "url": "",
    "classification": "public",
}


@pytest.fixture
def world(tmp_path):
    app = notify_app(tmp_path / "notify.db")
    with TestClient(app) as client:
        acme = new_organisation(client, "Acme")
        other = new_organisation(client, "Other")
        admin = {"Authorization": f"Bearer {acme['api_key']}"}
        member_key = client.post("/v1/api-keys", json={"name": "m", "role": "member"}, headers=admin).json()["key"]
        ministry = client.post(
            "/v1/organisations",
            headers={"Authorization": f"Bearer {BOOTSTRAP}"},
            json={"name": "Ministry", "kind": "ministry", "clearance": "government"},
        ).json()
        ids = {}
        with app.state.sessions() as session:
            for name, rule, breach in (
                ("news", "export-controls", {"evidence": [NEWS]}),
                ("price", "price-volatility", {"evidence": [PRICE]}),
                ("signal", "news-signal-burst", {"indicator": "news_signals_30d", "evidence": [SIGNAL]}),
            ):
                row = Alert(
                    organisation_id=acme["organisation"]["id"],
                    fingerprint=f"fp-{name}",
                    material="gallium",
                    rule=rule,
                    severity="critical",
                    status="firing",
                    starts_at=datetime(2026, 11, 20, tzinfo=UTC),
                    summary=f"Gallium {name} alert",
                    breach=breach,
                )
                session.add(row)
                session.flush()
                ids[name] = row.id
            session.commit()
        yield (
            client,
            {
                "admin": admin,
                "member": {"Authorization": f"Bearer {member_key}"},
                "other": {"Authorization": f"Bearer {other['api_key']}"},
                "ministry": {"Authorization": f"Bearer {ministry['api_key']}"},
            },
            ids,
        )


def _count(reason: str, rule: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "mews_notify_alert_feedback_total", {"reason": reason, "rule": rule, "material": "gallium"}
        )
        or 0.0
    )


def test_a_member_gives_feedback_and_the_alert_lists_it(world) -> None:
    client, key, ids = world
    before = _count("duplicate", "price-volatility")
    answer = client.post(
        f"/v1/alerts/{ids['price']}/feedback",
        headers=key["member"],
        json={"reason": "duplicate", "comment": "same as yesterday"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["reason"] == "duplicate"
    assert answer.json()["silence_id"] is None
    assert _count("duplicate", "price-volatility") == before + 1
    listed = client.get(f"/v1/alerts/{ids['price']}", headers=key["member"]).json()["feedback"]
    assert [(f["reason"], f["comment"]) for f in listed] == [("duplicate", "same as yesterday")]


def test_another_organisations_alert_is_not_found(world) -> None:
    client, key, ids = world
    answer = client.post(f"/v1/alerts/{ids['news']}/feedback", headers=key["other"], json={"reason": "useful"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert client.get(f"/v1/alerts/{ids['news']}", headers=key["admin"]).json()["feedback"] == []


def test_a_bad_reason_is_a_validation_problem(world) -> None:
    client, key, ids = world
    answer = client.post(f"/v1/alerts/{ids['news']}/feedback", headers=key["member"], json={"reason": "meh"})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"


def test_an_admin_mutes_the_material_and_rule_from_feedback(world) -> None:
    client, key, ids = world
    answer = client.post(
        f"/v1/alerts/{ids['news']}/feedback",
        headers=key["admin"],
        json={"reason": "irrelevant", "comment": "we hold stock", "mute": True},
    )
    assert answer.status_code == 201, answer.text
    silences = client.get("/v1/silences?active=true", headers=key["admin"]).json()
    assert [(s["id"], s["material"], s["rule"], s["severity"]) for s in silences] == [
        (answer.json()["silence_id"], "gallium", "export-controls", None)
    ]


def test_a_government_operator_exports_news_feedback_as_classifier_cases(world) -> None:
    client, key, ids = world
    for alert, reason in (
        ("news", "irrelevant"),
        ("news", "useful"),
        ("news", "wrong_material"),
        ("price", "false_data"),
    ):
        assert (
            client.post(f"/v1/alerts/{ids[alert]}/feedback", headers=key["member"], json={"reason": reason}).status_code
            == 201
        )
    assert client.get("/v1/feedback/classifier-cases", headers=key["admin"]).status_code == 403
    answer = client.get("/v1/feedback/classifier-cases", headers=key["ministry"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    assert answer.headers["mews-skipped-not-news"] == "1"  # the price alert has no news to classify
    cases = [json.loads(line) for line in answer.text.splitlines()]
    expected = {c["feedback"]["reason"]: c["expected"] for c in cases}
    assert expected["irrelevant"] == {
        "materials": [],
        "countries": ["CN"],
        "measure": "export_licence",
        "relevant": False,
        "topic": "export_control",
    }
    assert expected["useful"] == {
        "materials": ["gallium"],
        "countries": ["CN"],
        "measure": "export_licence",
        "relevant": True,
        "topic": "export_control",
    }
    assert expected["wrong_material"]["not_materials"] == ["gallium"]
    assert expected["wrong_material"]["materials"] == []
    # The shape `mews news classify` and its evaluation read.
    assert all({"id", "lang", "text", "published", "expected"} <= set(c) for c in cases)
    assert {c["url"] for c in cases} == {NEWS["url"]}


def test_feedback_on_a_supply_signal_alert_becomes_a_case_of_its_topic_and_title(world) -> None:
    client, key, ids = world
    assert (
        client.post(
            f"/v1/alerts/{ids['signal']}/feedback", headers=key["member"], json={"reason": "useful"}
        ).status_code
        == 201
    )
    answer = client.get("/v1/feedback/classifier-cases", headers=key["ministry"])
    (case,) = [json.loads(line) for line in answer.text.splitlines()]
    assert case["expected"] == {
        "materials": ["gallium"],
        "countries": [],
        "measure": "none",
        "relevant": True,
        "topic": "leadtime",
    }
    assert (case["title"], case["url"]) == ("Gallium lead times stretch to eighteen weeks", SIGNAL["url"])
