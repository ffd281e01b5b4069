"""Inhibition and silences on the real broker, database and a loopback webhook receiver: a critical export
control keeps its material's warning price alerts from being sent while it fires, the API marks each muted alert
with what mutes it, and the inhibited alert goes out once the export control resolves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.notify.store import models
from services.notify.store.db import unit_of_work
from services.scoring.rules import fingerprint
from shared.events import BreachStatus, Severity
from tests.eventually import eventually
from tests.integration.notify.world import add_webhook, breach, publish, running, subscribe

pytestmark = pytest.mark.integration

EXPORT = fingerprint("gallium", "export-control-in-force")
PRICE = fingerprint("gallium", "price-change-30d")
ANTIMONY = fingerprint("antimony", "price-change-30d")


def sent_fingerprints(http_receiver, path: str) -> list[list[str]]:
    return [[a["fingerprint"] for a in json.loads(r.body)["alerts"]] for r in http_receiver.delivered(path)]


async def test_export_control_inhibits_price_warnings_until_it_resolves_and_the_api_marks_muted_alerts(
    settings, db_sessions, http_receiver, make_tenant
):
    tenant = make_tenant("Inhibited BV")
    now = datetime.now(UTC)
    with unit_of_work(db_sessions) as s:
        org = s.get(models.Organisation, tenant.id)
        hook = add_webhook(s, org, http_receiver.url("/muted"))
        subscribe(s, org, [hook], material="gallium")
        subscribe(s, org, [hook], material="antimony")
        quiet = models.Silence(
            organisation_id=org.id,
            material="antimony",
            comment="known",
            created_by="ops",
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=1),
        )
        s.add(quiet)
        s.flush()
        silence_id = quiet.id

    async with running(settings, db_sessions):
        await publish(
            settings,
            breach(EXPORT, rule="export-control-in-force", severity=Severity.CRITICAL),
            breach(PRICE, rule="price-change-30d"),
            breach(ANTIMONY, material="antimony", rule="price-change-30d"),
        )

        def stored() -> dict[str, str] | None:
            with unit_of_work(db_sessions) as s:
                ids = {a.fingerprint: a.id for a in s.scalars(select(models.Alert))}
            return ids if len(ids) == 3 else None

        ids = await eventually(stored, what="the three alerts stored")
        await eventually(lambda: http_receiver.delivered("/muted"), what="the export control alert")
        with unit_of_work(db_sessions) as s:
            # An alert row and its notification commit together: an inhibited alert has none.
            carried = {i for n in s.scalars(select(models.Notification)) for i in n.alert_ids}
        assert ids[EXPORT] in carried
        assert ids[PRICE] not in carried
        assert ids[ANTIMONY] not in carried

        listed = {a["fingerprint"]: a for a in tenant.http.get("/v1/alerts", params={"status": "firing"}).json()}
        assert listed[EXPORT]["state"] == "firing"
        assert listed[EXPORT]["muted_by"] is None
        assert listed[PRICE]["state"] == "inhibited"
        assert listed[PRICE]["muted_by"]["kind"] == "alert"
        assert listed[PRICE]["muted_by"]["id"] == ids[EXPORT]
        assert listed[PRICE]["muted_by"]["fingerprint"] == EXPORT
        assert "export-control-in-force" in listed[PRICE]["muted_by"]["reason"]
        assert listed[ANTIMONY]["state"] == "silenced"
        assert listed[ANTIMONY]["muted_by"] == {
            "kind": "silence",
            "id": silence_id,
            "fingerprint": None,
            "reason": listed[ANTIMONY]["muted_by"]["reason"],
        }
        detail = tenant.http.get(f"/v1/alerts/{ids[PRICE]}").json()
        assert detail["state"] == "inhibited"
        assert detail["muted_by"]["id"] == ids[EXPORT]

        # The export control ends: the sweep sends the price warning it held back.
        await publish(
            settings,
            breach(EXPORT, rule="export-control-in-force", severity=Severity.CRITICAL, status=BreachStatus.RESOLVED),
        )
        await eventually(
            lambda: any(PRICE in sent for sent in sent_fingerprints(http_receiver, "/muted")),
            what="the price warning after the inhibition lifted",
        )

    listed = {a["fingerprint"]: a for a in tenant.http.get("/v1/alerts").json()}
    assert listed[PRICE]["state"] == "firing"
    assert listed[PRICE]["muted_by"] is None
    assert listed[EXPORT]["state"] == "resolved"
    assert listed[ANTIMONY]["state"] == "silenced"
    assert all(ANTIMONY not in sent for sent in sent_fingerprints(http_receiver, "/muted"))


async def test_inhibition_can_be_turned_off_in_the_settings(settings, db_sessions, http_receiver, make_tenant):
    tenant = make_tenant("Uninhibited BV")
    with unit_of_work(db_sessions) as s:
        org = s.get(models.Organisation, tenant.id)
        subscribe(s, org, [add_webhook(s, org, http_receiver.url("/all"))], material="gallium")

    async with running(settings.model_copy(update={"inhibit_rules": ()}), db_sessions):
        await publish(
            settings,
            breach(EXPORT, rule="export-control-in-force", severity=Severity.CRITICAL),
            breach(PRICE, rule="price-change-30d"),
        )
        await eventually(
            lambda: {EXPORT, PRICE} <= {fp for sent in sent_fingerprints(http_receiver, "/all") for fp in sent},
            what="both alerts sent",
        )
