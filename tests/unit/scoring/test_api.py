"""The read API over a view filled by hand: keys, clearances, ranking, 404s. No broker."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.scoring.api import create_api
from services.scoring.settings import ScoringSettings
from services.scoring.view import MaterialsView
from shared.events import BreachRaised, Classification, Evidence, IndicatorSnapshot

GOV_KEY, RESTRICTED_KEY, PUBLIC_KEY = "key-gov", "key-restricted", "key-public"
T = datetime(2025, 3, 3, tzinfo=UTC)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def evidence(eid: str, level: Classification) -> Evidence:
    return Evidence(id=eid, source="s", kind="price", time=T, value=1.0, classification=level)


def breach(
    material: str,
    rule: str,
    level: Classification,
    items: list[Evidence],
    status: str = "firing",
    severity: str = "warning",
) -> BreachRaised:
    return BreachRaised(
        fingerprint=f"{material}-{rule}",
        material=material,
        rule=rule,
        indicator="price",
        severity=severity,
        status=status,
        value=1.0,
        starts_at=T,
        observed_at=T,
        summary=f"{rule} on {material}",
        evidence=items,
        classification=level,
    )


def snapshot(
    material: str,
    score: float | None,
    level: Classification = Classification.PUBLIC,
    controls: list[dict] | None = None,
) -> IndicatorSnapshot:
    return IndicatorSnapshot(
        material=material,
        as_of=T,
        indicators={"price": 10.0},
        risk_score=score,
        components={"volatility": 5.0} if score is not None else {},
        export_controls=controls or [],
        classification=level,
    )


@pytest.fixture
def client() -> TestClient:
    view = MaterialsView()
    controls = [
        {"country": "CN", "measure": "export_licence", "classification": "public"},
        {"country": "CN", "measure": "export_ban", "classification": "government"},
    ]
    for snap in (
        snapshot("gallium", 70.0, controls=controls),
        snapshot("germanium", 40.0),
        snapshot("antimony", 90.0, Classification.GOVERNMENT),
        snapshot("tin", None),
    ):
        view.apply(snap)
    view.apply(breach("gallium", "price-jump", Classification.PUBLIC, [evidence("p1", Classification.PUBLIC)]))
    view.apply(
        breach(
            "gallium",
            "leadtime",
            Classification.GOVERNMENT,
            [evidence("g1", Classification.GOVERNMENT)],
            severity="critical",
        )
    )
    view.apply(
        breach(
            "gallium",
            "mixed",
            Classification.RESTRICTED,
            [evidence("p2", Classification.PUBLIC), evidence("r1", Classification.RESTRICTED)],
        )
    )
    view.apply(breach("gallium", "old", Classification.PUBLIC, [], status="resolved"))
    settings = ScoringSettings(
        api_keys=f"{digest(GOV_KEY)}:government,{digest(RESTRICTED_KEY)}:restricted,{digest(PUBLIC_KEY)}"
    )
    return TestClient(create_api(settings, view))


def get(client: TestClient, path: str, key: str | None):
    return client.get(path, headers={"Authorization": f"Bearer {key}"} if key else {})


@pytest.mark.parametrize("path", ["/v1/materials", "/v1/materials/gallium", "/v1/risk", "/v1/history"])
@pytest.mark.parametrize("key", [None, "not-a-configured-key", digest(GOV_KEY)])
def test_every_read_route_refuses_a_missing_or_unknown_key_with_401(client, path, key):
    response = get(client, path, key)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_unknown_material_is_404(client):
    assert get(client, "/v1/materials/unobtainium", PUBLIC_KEY).status_code == 404


def test_government_breaches_are_shown_only_to_a_government_key(client):
    rules = {
        key: {b["rule"] for b in get(client, "/v1/materials/gallium", key).json()["open_breaches"]}
        for key in (GOV_KEY, RESTRICTED_KEY, PUBLIC_KEY)
    }
    assert rules == {
        GOV_KEY: {"price-jump", "leadtime", "mixed"},
        RESTRICTED_KEY: {"price-jump", "mixed"},
        PUBLIC_KEY: {"price-jump"},
    }
    counts = {
        key: {
            m["material"]: (m["open_breaches"], m["highest_severity"]) for m in get(client, "/v1/materials", key).json()
        }["gallium"]
        for key in (GOV_KEY, PUBLIC_KEY)
    }
    assert counts == {GOV_KEY: (3, "critical"), PUBLIC_KEY: (1, "warning")}


def test_a_resolved_breach_is_not_listed_as_open(client):
    rules = {b["rule"] for b in get(client, "/v1/materials/gallium", GOV_KEY).json()["open_breaches"]}
    assert "old" not in rules


def test_export_controls_above_the_clearance_are_left_out(client):
    measures = {
        key: [c["measure"] for c in get(client, "/v1/materials/gallium", key).json()["export_controls"]]
        for key in (GOV_KEY, PUBLIC_KEY)
    }
    assert measures == {GOV_KEY: ["export_licence", "export_ban"], PUBLIC_KEY: ["export_licence"]}


def test_evidence_above_the_clearance_is_removed_from_a_visible_breach():
    view = MaterialsView()
    view.apply(snapshot("gallium", 10.0))
    # Inconsistent on purpose (a public breach should carry only public evidence): the filter must still hold.
    view.apply(
        breach(
            "gallium",
            "leaky",
            Classification.PUBLIC,
            [evidence("p1", Classification.PUBLIC), evidence("g1", Classification.GOVERNMENT)],
        )
    )
    client = TestClient(create_api(ScoringSettings(api_keys=digest(PUBLIC_KEY)), view))
    shown = get(client, "/v1/materials/gallium", PUBLIC_KEY).json()["open_breaches"]
    assert [[e["id"] for e in b["evidence"]] for b in shown] == [["p1"]]


def test_risk_ranking_is_by_score_and_withholds_scores_resting_on_inputs_above_the_clearance(client):
    ranked = {
        key: [(r["rank"], r["material"], r["risk_score"], r["withheld"]) for r in get(client, "/v1/risk", key).json()]
        for key in (GOV_KEY, PUBLIC_KEY)
    }
    assert ranked[GOV_KEY] == [
        (1, "antimony", 90.0, False),
        (2, "gallium", 70.0, False),
        (3, "germanium", 40.0, False),
        (4, "tin", None, False),
    ]
    assert ranked[PUBLIC_KEY] == [
        (1, "gallium", 70.0, False),
        (2, "germanium", 40.0, False),
        (3, "antimony", None, True),
        (4, "tin", None, False),
    ]
    detail = get(client, "/v1/materials/antimony", PUBLIC_KEY).json()
    assert (detail["risk_score"], detail["indicators"], detail["components"], detail["withheld"]) == (
        None,
        {},
        {},
        True,
    )


def test_materials_list_every_material_with_its_latest_score(client):
    listed = [(m["material"], m["risk_score"]) for m in get(client, "/v1/materials", GOV_KEY).json()]
    assert listed == [("antimony", 90.0), ("gallium", 70.0), ("germanium", 40.0), ("tin", None)]


def test_openapi_docs_are_served_without_a_key(client):
    assert client.get("/docs").status_code == 200
    assert "/v1/risk" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("entry", ["not-hex", "a" * 63, f"{'a' * 64}:secret"])
def test_malformed_key_entries_are_refused_at_start_without_echoing_them(entry):
    with pytest.raises(ValidationError) as info:
        ScoringSettings(api_keys=f"{digest(GOV_KEY)},{entry}")
    assert "entry 2" in str(info.value)
    assert entry not in str(info.value)


def _at(material: str, minutes: int, score: float, level: Classification = Classification.PUBLIC) -> IndicatorSnapshot:
    return IndicatorSnapshot(
        material=material,
        as_of=T + timedelta(minutes=minutes),
        indicators={"price": score},
        risk_score=score,
        classification=level,
    )


def test_history_keeps_the_last_snapshots_oldest_first_and_a_snapshot_read_again_once():
    view = MaterialsView(history_length=3)
    for minute in range(5):
        view.apply(_at("gallium", minute, 10.0 + minute))
    view.apply(_at("gallium", 4, 99.0))  # the same moment again (a rewound feed): it replaces the last point
    view.apply(_at("germanium", 0, 1.0))
    assert [(s.as_of.minute, s.risk_score) for s in view.recent("gallium")] == [(2, 12.0), (3, 13.0), (4, 99.0)]
    view.apply(_at("gallium", 3, 50.0))  # older than the last point: the feed went back, the history with it
    assert [(s.as_of.minute, s.risk_score) for s in view.recent("gallium")] == [(2, 12.0), (3, 50.0)]
    assert view.snapshot("gallium").risk_score == 50.0
    assert [s.risk_score for s in view.recent("germanium")] == [1.0]
    assert view.recent("tin") == []


def test_history_route_shows_points_oldest_first_without_those_above_the_clearance():
    view = MaterialsView()
    view.apply(_at("gallium", 0, 10.0))
    view.apply(_at("gallium", 1, 20.0, Classification.GOVERNMENT))
    view.apply(_at("gallium", 2, 30.0))
    view.apply(_at("tin", 0, 5.0))
    settings = ScoringSettings(api_keys=f"{digest(GOV_KEY)}:government,{digest(PUBLIC_KEY)}")
    client = TestClient(create_api(settings, view))
    shown = {
        key: {h["material"]: [p["risk_score"] for p in h["points"]] for h in get(client, "/v1/history", key).json()}
        for key in (GOV_KEY, PUBLIC_KEY)
    }
    assert shown == {
        GOV_KEY: {"gallium": [10.0, 20.0, 30.0], "tin": [5.0]},
        PUBLIC_KEY: {"gallium": [10.0, 30.0], "tin": [5.0]},
    }
    narrowed = get(client, "/v1/history?material=tin&material=unobtainium", GOV_KEY).json()
    assert narrowed == [
        {
            "material": "tin",
            "points": [{"as_of": "2025-03-03T00:00:00Z", "risk_score": 5.0, "indicators": {"price": 5.0}}],
        }
    ]


def test_the_view_folds_a_fetch_of_breaches_to_what_folding_each_in_order_gives():
    from types import SimpleNamespace

    from services.scoring.view import VIEW_EVENTS, ViewFeed
    from shared import topics as declared
    from shared.events import encode

    def message(b: BreachRaised | None, raw: bytes | None = None) -> SimpleNamespace:
        key = (b.fingerprint if b is not None else "cobalt-jump").encode()
        return SimpleNamespace(key=key, value=raw if b is None else encode(b, source="test"))

    items = [evidence("e1", Classification.PUBLIC)]
    fetch = [
        message(breach("gallium", "jump", Classification.PUBLIC, items, status="firing")),
        message(breach("cobalt", "jump", Classification.PUBLIC, items, status="firing")),
        message(breach("gallium", "jump", Classification.PUBLIC, items, status="resolved")),
        message(breach("gallium", "level", Classification.PUBLIC, items, status="firing")),
        message(breach("gallium", "jump", Classification.PUBLIC, items, status="firing", severity="critical")),
        message(breach("cobalt", "jump", Classification.PUBLIC, items, status="resolved")),
        message(None, b"not an envelope"),  # cobalt-jump's last, unreadable: the one before it is folded
    ]
    topic = declared.BREACHES.qualified("t")
    in_order, latest = ViewFeed("127.0.0.1:1", "t", MaterialsView()), ViewFeed("127.0.0.1:1", "t", MaterialsView())
    for m in fetch:
        in_order._fold(topic, m.value)
    superseded = VIEW_EVENTS.labels(declared.BREACHES.name, "superseded")
    before = superseded._value.get()
    assert latest._fold_latest(topic, fetch) == {"gallium", "cobalt"}
    assert latest.view.breaches == in_order.view.breaches
    assert latest.view.breaches["gallium-jump"].severity == "critical"
    assert latest.view.breaches["cobalt-jump"].status == "resolved"
    assert superseded._value.get() - before == 3  # two of gallium-jump, one of cobalt-jump were not decoded
