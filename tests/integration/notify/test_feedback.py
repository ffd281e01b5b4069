"""Feedback end to end on the real broker, database and API: a breach on the breaches topic becomes an alert at a
webhook; a member says it was irrelevant through the notify API; it is listed and counted; the organisation
mutes the (material, rule) from it, so a later breach of that pair is kept, marked silenced and never sent; and
a government operator exports it as a case `mews news classify` reads."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from services.ingest.classify.cli import classify_lines
from services.notify.store.db import unit_of_work
from shared.events import Evidence, Severity
from tests.eventually import eventually
from tests.integration.notify.world import add_marker_subscriber, breach, pass_marker, publish, running

pytestmark = pytest.mark.integration

NEWS = Evidence(
    id="news-mofcom-23",
    source="rss:mofcom",
    kind="news",
    time=breach("x").observed_at,
    value="CN export_licence",
    url="https://example.org/mofcom-23",
)


def control_breach(fingerprint: str, rule: str = "export-control-in-force"):
    return breach(fingerprint, rule=rule, severity=Severity.CRITICAL).model_copy(update={"evidence": [NEWS]})


def fingerprints(receiver, path: str) -> list[str]:
    return [a["fingerprint"] for r in receiver.delivered(path) for a in json.loads(r.body)["alerts"]]


def counted(reason: str, rule: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "mews_notify_alert_feedback_total", {"reason": reason, "rule": rule, "material": "gallium"}
        )
        or 0.0
    )


async def test_feedback_through_the_api_is_listed_counted_mutes_its_pair_and_becomes_a_classifier_case(
    settings, db_sessions, make_tenant, http_receiver
):
    ministry = make_tenant("Ministerie van EZK", kind="ministry", clearance="government")
    acme = make_tenant("Acme Magnets BV")
    hook = acme.http.post("/v1/channels", json={"kind": "webhook", "target": http_receiver.url("/acme")})
    assert hook.status_code == 201, hook.text
    assert (
        acme.http.post(
            "/v1/subscriptions", json={"material": "gallium", "channel_ids": [hook.json()["id"]]}
        ).status_code
        == 201
    )
    member = acme.client_with_key(
        acme.http.post("/v1/api-keys", json={"name": "analyst", "role": "member"}).json()["key"]
    )
    before = counted("irrelevant", "export-control-in-force")
    with unit_of_work(db_sessions) as s:
        add_marker_subscriber(s, http_receiver)

    async with running(settings, db_sessions):
        await publish(settings, control_breach("fp-ga-control"))
        await eventually(lambda: fingerprints(http_receiver, "/acme") == ["fp-ga-control"], what="the alert sent")
        [alert] = json.loads(http_receiver.delivered("/acme")[0].body)["alerts"]

        said = member.post(
            f"/v1/alerts/{alert['id']}/feedback", json={"reason": "irrelevant", "comment": "a licence we already hold"}
        )
        assert said.status_code == 201, said.text
        assert (said.json()["reason"], said.json()["silence_id"]) == ("irrelevant", None)
        assert counted("irrelevant", "export-control-in-force") == before + 1
        listed = member.get(f"/v1/alerts/{alert['id']}").json()["feedback"]
        assert [(f["reason"], f["comment"], f["created_by"]) for f in listed] == [
            ("irrelevant", "a licence we already hold", "api-key:analyst")
        ]

        # Muting is the organisation's decision: a member may not, an admin may, from the same feedback form.
        assert (
            member.post(f"/v1/alerts/{alert['id']}/feedback", json={"reason": "irrelevant", "mute": True}).status_code
            == 403
        )
        muted = acme.http.post(f"/v1/alerts/{alert['id']}/feedback", json={"reason": "irrelevant", "mute": True})
        assert muted.status_code == 201, muted.text
        silence_id = muted.json()["silence_id"]
        [silence] = acme.http.get("/v1/silences", params={"active": "true"}).json()
        assert (silence["id"], silence["material"], silence["rule"]) == (
            silence_id,
            "gallium",
            "export-control-in-force",
        )

        # A later breach of the muted pair is kept and marked; one of another rule on the material still goes.
        await publish(
            settings, control_breach("fp-ga-control-2"), control_breach("fp-ga-price", rule="price-volatility")
        )

        def later() -> dict | None:
            found = {a["fingerprint"]: a for a in member.get("/v1/alerts").json()}
            return found.get("fp-ga-control-2") if "fp-ga-price" in fingerprints(http_receiver, "/acme") else None

        kept = await eventually(later, what="the muted alert kept and the other one sent")
        assert (kept["state"], kept["muted_by"]["kind"], kept["muted_by"]["id"]) == ("silenced", "silence", silence_id)
        # A marker group begun later, past its group interval: a muted alert sent late would have come first.
        await pass_marker(settings, http_receiver, "muted", rules=2)
        assert fingerprints(http_receiver, "/acme") == ["fp-ga-control", "fp-ga-price"]

    exported = ministry.http.get("/v1/feedback/classifier-cases")
    assert exported.status_code == 200, exported.text
    assert acme.http.get("/v1/feedback/classifier-cases").status_code == 403  # not a government operator
    cases = [json.loads(line) for line in exported.text.splitlines()]
    assert [c["feedback"]["reason"] for c in cases] == ["irrelevant", "irrelevant"]
    case = cases[0]
    assert case["expected"] == {
        "materials": [],
        "countries": ["CN"],
        "measure": "export_licence",
        "relevant": False,
        "topic": "export_control",
    }
    assert (case["url"], case["split"], case["feedback"]["alert_id"]) == (NEWS.url, "feedback", alert["id"])
    # `mews news classify` reads every exported line as an item (an unreadable one would be an error line).
    classified = [json.loads(line) for line in classify_lines(exported.text.splitlines())]
    assert [c.get("error") for c in classified] == [None, None]
    assert [c["id"] for c in classified] == [c["id"] for c in cases]
