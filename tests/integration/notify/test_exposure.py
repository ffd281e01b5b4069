"""Exposure, stress tests and the crisis list over HTTP on SQLite and PostgreSQL: government users only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.store.exposure import shipped_import_shares
from services.notify.store.models import Alert, Notification

pytestmark = pytest.mark.integration


@pytest.fixture
def world(make_tenant):
    """A ministry, a company with gallium and germanium in its BOM (one line of unknown origin), a subscriber."""
    ministry = make_tenant("Ministerie van EZK", kind="ministry", clearance="government")
    radar = make_tenant("Radar Works BV")
    radar_channel = radar.http.post("/v1/channels", json={"kind": "email", "target": "a@radar.example"}).json()["id"]
    radar.http.post(
        "/v1/products",
        json={
            "name": "Radar module",
            "bom": [
                {
                    "component": "GaN chip",
                    "material": "gallium",
                    "share": 0.02,
                    "origin_country": "CN",
                    "supplier": "X",
                },
                {"component": "GaAs amplifier", "material": "gallium", "share": 0.01, "origin_country": "DE"},
            ],
        },
    )
    radar.http.post(
        "/v1/products",
        json={"name": "Night sight", "bom": [{"component": "IR lens", "material": "germanium", "share": 0.3}]},
    )
    chips = make_tenant("Chip Foundry BV")
    chip_channel = chips.http.post("/v1/channels", json={"kind": "email", "target": "a@chips.example"}).json()["id"]
    chips.http.post("/v1/subscriptions", json={"material": "gallium", "channel_ids": [chip_channel]})
    return ministry, radar, radar_channel, chips, chip_channel


def test_a_bom_line_without_origin_is_flagged_and_counted_against_the_main_origins(world) -> None:
    ministry, *_ = world
    main = shipped_import_shares().main_origins("germanium")
    assert "CN" in main  # the trade table: China is a main origin of the EU's germanium

    found = ministry.http.get("/v1/exposure", params={"material": "germanium", "country": "CN"}).json()
    assert found["origin_unknown_count"] == 1
    [path] = found["organisations"][0]["products"][0]["paths"]
    assert (path["path"], path["origin_country"], path["origin_unknown"]) == ("Night sight>IR lens", None, True)
    assert path["likely_origins"] == main

    # A country that is no main origin of germanium finds no line of unknown origin.
    assert (
        ministry.http.get("/v1/exposure", params={"material": "germanium", "country": "NO"}).json()["organisations"]
        == []
    )


def test_a_stress_test_names_the_exposed_bom_paths_and_the_share_of_supply(world) -> None:
    ministry, *_ = world
    answer = ministry.http.post("/v1/stress-tests", json={"country": "CN", "material": "gallium"})
    assert answer.status_code == 200, answer.text
    test = answer.json()
    assert [o["name"] for o in test["organisations"]] == ["Radar Works BV"]
    assert [
        (p["path"], p["material"], p["origin_country"]) for p in test["organisations"][0]["products"][0]["paths"]
    ] == [("Radar module>GaN chip", "gallium", "CN")]
    assert [s["name"] for s in test["direct_subscribers"]] == ["Chip Foundry BV"]
    table = shipped_import_shares()
    affected = test["supply_affected"]
    assert affected["extra_eu_share"] == table.partners("gallium")["CN"]
    assert 0.5 < affected["extra_eu_share"] < 0.8  # Comext 2024: China 67.9 % of extra-EU gallium by value
    assert affected["total_import_share"] < affected["extra_eu_share"]
    assert (affected["period"], affected["basis"]) == (table.period, "value")
    assert "Comext" in affected["source"]


def test_a_material_the_trade_table_lacks_has_no_share_and_keeps_lines_of_unknown_origin(world) -> None:
    ministry, radar, *_ = world
    assert "antimony" not in shipped_import_shares().materials  # not in the Comext extract
    radar.http.post(
        "/v1/products",
        json={"name": "Flame retardant", "bom": [{"component": "Sb2O3", "material": "antimony", "share": 0.05}]},
    )
    test = ministry.http.post("/v1/stress-tests", json={"country": "CN", "material": "antimony"}).json()
    assert test["supply_affected"]["extra_eu_share"] is None
    assert test["supply_affected"]["total_import_share"] is None
    [path] = test["organisations"][0]["products"][0]["paths"]
    assert (path["origin_unknown"], path["likely_origins"]) == (True, {})


def test_a_stress_test_refuses_what_the_catalog_does_not_know(world) -> None:
    ministry, *_ = world
    for body in (
        {"country": "XX", "material": "gallium"},
        {"country": "CN", "material": "unobtainium"},
        {"country": "cn", "material": "gallium"},
        {"country": "CN"},
    ):
        answer = ministry.http.post("/v1/stress-tests", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"


def _alert(
    db_sessions,
    organisation_id: str,
    fingerprint: str,
    severity: str,
    *,
    acknowledged: bool = False,
    material: str = "gallium",
    rule: str = "export-control",
) -> str:
    when = datetime.now(UTC) - timedelta(hours=1)
    with db_sessions() as session:
        row = Alert(
            organisation_id=organisation_id,
            fingerprint=fingerprint,
            material=material,
            rule=rule,
            severity=severity,
            status="firing",
            starts_at=when,
            updated_at=when,
            summary=fingerprint,
            via=[f"material:{material}"],
            breach={"fingerprint": fingerprint},
            acknowledged_at=when if acknowledged else None,
            acknowledged_by="a@x" if acknowledged else None,
        )
        session.add(row)
        session.commit()
        return row.id


def test_the_crisis_list_counts_what_fires_who_is_exposed_delivered_and_acknowledged(world, db_sessions) -> None:
    ministry, radar, radar_channel, chips, chip_channel = world
    radar_alert = _alert(db_sessions, radar.organisation["id"], "gallium-cn", "critical", acknowledged=True)
    _alert(db_sessions, chips.organisation["id"], "gallium-cn", "warning")
    _alert(db_sessions, chips.organisation["id"], "gallium-price", "warning", rule="price-spike")
    with db_sessions() as session:
        session.add(
            Notification(
                organisation_id=radar.organisation["id"],
                channel_id=radar_channel,
                kind="alert",
                alert_ids=[radar_alert],
                status="delivered",
                delivered_at=datetime.now(UTC),
            )
        )
        session.add(
            Notification(
                organisation_id=chips.organisation["id"],
                channel_id=chip_channel,
                kind="alert",
                alert_ids=[],
                status="failed",
            )
        )
        session.commit()

    answer = ministry.http.get("/v1/crisis")
    assert answer.status_code == 200, answer.text
    [control, price] = answer.json()
    assert (control["material"], control["rule"], control["severity"]) == ("gallium", "export-control", "critical")
    assert control["organisations"] == ["Chip Foundry BV", "Radar Works BV"]
    assert (control["alerts"], control["delivered"], control["acknowledged"]) == (2, 1, 1)
    assert (control["exposed"], control["subscribers"]) == (["Radar Works BV"], ["Chip Foundry BV"])
    assert (price["rule"], price["alerts"], price["delivered"], price["acknowledged"]) == ("price-spike", 1, 0, 0)


def test_the_crisis_list_counts_deliveries_within_its_window_and_of_the_current_episode_only(
    world, db_sessions
) -> None:
    ministry, radar, radar_channel, *_ = world
    now = datetime.now(UTC)
    opened = now - timedelta(days=60)
    alert_id = _alert(db_sessions, radar.organisation["id"], "gallium-long", "critical")
    with db_sessions() as session:
        session.get(Alert, alert_id).starts_at = opened  # firing for two months
        for delivered_at in (
            opened - timedelta(days=5),  # an earlier episode of the same alert
            now - timedelta(days=45),
        ):  # this episode, before the default window
            session.add(
                Notification(
                    organisation_id=radar.organisation["id"],
                    channel_id=radar_channel,
                    kind="alert",
                    alert_ids=[alert_id],
                    status="delivered",
                    delivered_at=delivered_at,
                    created_at=delivered_at,
                )
            )
        session.commit()

    def delivered(**params) -> int:
        answer = ministry.http.get("/v1/crisis", params=params)
        assert answer.status_code == 200, answer.text
        [row] = answer.json()
        return row["delivered"]

    assert delivered() == 0  # 30 days by default
    assert delivered(window="50d") == 1
    assert delivered(window="366d") == 1  # the earlier episode's delivery never counts
    with db_sessions() as session:
        session.add(
            Notification(
                organisation_id=radar.organisation["id"],
                channel_id=radar_channel,
                kind="alert",
                alert_ids=[alert_id],
                status="delivered",
                delivered_at=now - timedelta(hours=1),
            )
        )
        session.commit()
    assert delivered(window="12h") == 1
    for bad in ("0s", "367d", "soon", "-1d"):
        answer = ministry.http.get("/v1/crisis", params={"window": bad})
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"


def test_no_tenant_data_reaches_a_key_without_government_clearance(world, make_tenant) -> None:
    _, radar, *_ = world
    refused = [
        radar,
        make_tenant("RVO", kind="agency", clearance="restricted"),
        make_tenant("Defence Prime BV", kind="company", clearance="government"),
    ]
    refused.append(
        refused[1].client_with_key(
            refused[1].http.post("/v1/api-keys", json={"name": "m", "role": "member"}).json()["key"]
        )
    )
    for tenant in refused:
        http = getattr(tenant, "http", tenant)
        for answer in (
            http.get("/v1/exposure", params={"material": "gallium"}),
            http.post("/v1/stress-tests", json={"country": "CN", "material": "gallium"}),
            http.get("/v1/crisis"),
        ):
            assert answer.status_code == 403, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert "Radar" not in answer.text
            assert "Chip" not in answer.text
