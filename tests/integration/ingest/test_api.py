"""The push API on real Kafka: 401/403, per-item accepted or rejected with reasons, items on the topic once."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from services.ingest.api import create_app
from services.ingest.settings import IngestSettings
from shared import topics
from shared.events import Classification, LeadTimeQuoted, NewsReported, PriceObserved, StockReported

from .conftest import read_topic

pytestmark = pytest.mark.integration
INGEST_KEY, READ_KEY = "ingest-key-for-tests", "read-only-key-for-tests"
ANALYST_KEY = "restricted-analyst-key-for-tests"
MINISTRY_KEY = "government-ministry-key-for-tests"


@pytest.fixture
def api(kafka_topics, kafka_bootstrap, tmp_path):
    keys = (
        f"{hashlib.sha256(INGEST_KEY.encode()).hexdigest()}:ingest,"
        f"readers={hashlib.sha256(READ_KEY.encode()).hexdigest()}:read,"
        f"analysts={hashlib.sha256(ANALYST_KEY.encode()).hexdigest()}:ingest:restricted,"
        f"ministry={hashlib.sha256(MINISTRY_KEY.encode()).hexdigest()}:ingest:government"
    )
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_namespace=kafka_topics,
        state_dir=tmp_path,
        api_keys=keys,
        max_batch=5,
        max_body_bytes=4096,
    )
    with TestClient(create_app(settings)) as client:
        yield client


AUTH = {"Authorization": f"Bearer {INGEST_KEY}"}
GALLIUM = {
    "material": "gallium",
    "price": 338.5,
    "currency": "USD",
    "unit": "kg",
    "observed_at": "2023-08-31T00:00:00Z",
    "source": "analyst",
}


def test_without_a_key_401_and_without_the_ingest_scope_403(api):
    assert api.post("/v1/prices", json={"items": [GALLIUM]}).status_code == 401
    assert (
        api.post("/v1/prices", json={"items": [GALLIUM]}, headers={"Authorization": "Bearer not-a-key"}).status_code
        == 401
    )
    response = api.post("/v1/prices", json={"items": [GALLIUM]}, headers={"Authorization": f"Bearer {READ_KEY}"})
    assert response.status_code == 403
    assert READ_KEY not in response.text


def test_batch_and_body_limits_and_shape_are_enforced(api):
    assert api.post("/v1/prices", json={"items": [GALLIUM] * 6}, headers=AUTH).status_code == 413
    assert api.post("/v1/prices", content=b'{"items": [' + b" " * 5000 + b"]}", headers=AUTH).status_code == 413
    assert api.post("/v1/prices", content=b"{not json", headers=AUTH).status_code == 400
    assert api.post("/v1/prices", json=[GALLIUM], headers=AUTH).status_code == 422


async def test_each_item_is_accepted_or_rejected_with_its_index_and_reason_and_published_once(
    api, kafka_bootstrap, kafka_topics
):
    batch = {
        "items": [
            GALLIUM,
            GALLIUM | {"price": -3},
            GALLIUM | {"material": "unobtainium"},
            {
                "material": "germanium",
                "price": "1290",
                "currency": "usd",
                "unit": "Kilogram",
                "observed_at": "2023-08-31",
            },
            GALLIUM | {"observed_at": "2999-01-01T00:00:00Z"},
        ]
    }
    response = api.post("/v1/prices", json=batch, headers=AUTH)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 3)
    results = body["items"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "accepted", "rejected"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert "positive" in results[1]["reason"]
    assert "unobtainium" in results[2]["reason"]
    assert "future" in results[4]["reason"]

    again = api.post("/v1/prices", json={"items": [GALLIUM]}, headers=AUTH).json()
    assert again["items"][0] == {"index": 0, "status": "accepted", "reason": "already published", "duplicate": True}

    messages = await read_topic(kafka_bootstrap, kafka_topics, topics.PRICES, expect=2)
    events = sorted((e for _, e, _ in messages), key=lambda e: e.material)
    assert all(isinstance(e, PriceObserved) for e in events)
    assert [(e.material, e.price, e.currency, e.unit, e.source) for e in events] == [
        ("gallium", 338.5, "USD", "kg", "analyst"),
        ("germanium", 1290.0, "USD", "kg", f"api:key{hashlib.sha256(INGEST_KEY.encode()).hexdigest()[:8]}"),
    ]


async def test_lead_times_and_trade_flows_are_published_through_the_same_path(api, kafka_bootstrap, kafka_topics):
    lead = api.post(
        "/v1/leadtimes",
        headers=AUTH,
        json={
            "items": [
                {
                    "material": "gallium",
                    "lead_time_weeks": 12,
                    "quoted_at": "2023-08-15",
                    "origin_country": "CN",
                    "supplier": "Example Metals",
                },
                {"material": "gallium", "lead_time_days": 0, "quoted_at": "2023-08-15"},
            ]
        },
    ).json()
    assert [r["status"] for r in lead["items"]] == ["accepted", "rejected"]
    trade = api.post(
        "/v1/trade",
        headers=AUTH,
        json={
            "items": [
                {
                    "reporter": "NL",
                    "partner": "CN",
                    "hs_code": "8110.10.00",
                    "period": "2023-09",
                    "quantity_kg": 38000,
                    "value_eur": 412800,
                },
                {"reporter": "NL", "partner": "CN", "hs_code": "abc", "period": "2023-09"},
            ]
        },
    ).json()
    assert [r["status"] for r in trade["items"]] == ["accepted", "rejected"]

    leads = await read_topic(kafka_bootstrap, kafka_topics, topics.LEADTIMES, expect=1)
    assert [(e.material, e.lead_time_days) for _, e, _ in leads if isinstance(e, LeadTimeQuoted)] == [("gallium", 84.0)]
    flows = await read_topic(kafka_bootstrap, kafka_topics, topics.TRADE, expect=1)
    assert [(e.material, e.hs_code, e.partner) for _, e, _ in flows] == [("antimony", "81101000", "CN")]


async def test_stock_reports_reach_their_topic_government_only_and_score_days_of_cover(
    api, kafka_bootstrap, kafka_topics
):
    from services.scoring.config import load_config
    from services.scoring.engine import apply_event
    from shared.events import TradeFlowReported

    reserve = {"material": "gallium", "tonnes": 4.5, "reported_at": "2024-03-01", "holder": "NL strategic reserve"}
    # Government-only by default, so a key without that clearance may not push it at all.
    assert api.post("/v1/stocks", headers=AUTH, json={"items": [reserve]}).status_code == 403
    stocks = api.post(
        "/v1/stocks",
        headers={"Authorization": f"Bearer {MINISTRY_KEY}"},
        json={
            "items": [
                reserve,
                {"material": "gallium", "tonnes": -2, "reported_at": "2024-03-01"},
                {"material": "gallium", "tonnes": 1, "reported_at": "2024-03-01", "classification": "secret"},
            ]
        },
    ).json()
    assert [r["status"] for r in stocks["items"]] == ["accepted", "rejected", "rejected"]

    (message,) = await read_topic(kafka_bootstrap, kafka_topics, topics.STOCKS, expect=1)
    _, event, key = message
    assert isinstance(event, StockReported)
    assert key == b"gallium"  # keyed by material, co-partitioned with the other inputs
    assert (event.material, event.tonnes, event.classification) == ("gallium", 4.5, Classification.GOVERNMENT)
    # What the scoring engine makes of it, as it came off the broker: 32.8725 t net imports in 2024 -> 50 days.
    config = load_config()
    state = apply_event(
        None,
        TradeFlowReported(
            material="gallium",
            source="comext",
            reporter="EU27",
            partner="CN",
            hs_code="81129289",
            period="2024",
            quantity_kg=32_872.5,
        ),
        event_id="flow",
        config=config,
    ).state
    outcome = apply_event(state, event, event_id="stock", config=config)
    assert outcome.snapshot.indicators["stock_cover_days"] == pytest.approx(50.0)
    (breach,) = [b for b in outcome.breaches if b.rule == "stock-cover"]
    assert (breach.parameter, breach.classification) == ("supply_and_demand", Classification.GOVERNMENT)


async def test_a_stock_report_said_to_be_public_is_published_public(api, kafka_bootstrap, kafka_topics):
    public = {
        "material": "gallium",
        "tonnes": 2.0,
        "reported_at": "2024-03-01",
        "holder": "an annual report",
        "classification": "public",
    }
    assert api.post("/v1/stocks", headers=AUTH, json={"items": [public]}).json()["accepted"] == 1
    (message,) = await read_topic(kafka_bootstrap, kafka_topics, topics.STOCKS, expect=1)
    assert message[1].classification is Classification.PUBLIC


def test_observability_endpoints_answer(api):
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").json()["status"] == "ready"
    metrics = api.get("/metrics").text
    assert "mews_build_info" in metrics


async def test_a_classified_signal_is_taken_from_a_key_cleared_for_it_and_refused_above(
    api, kafka_bootstrap, kafka_topics
):
    analyst = {"Authorization": f"Bearer {ANALYST_KEY}"}
    ban = {
        "title": "China bans gallium exports to the EU",
        "text": "From embassy reporting.",
        "published_at": "2023-08-30T09:00:00Z",
        "classification": "restricted",
    }
    taken = api.post("/v1/news", headers=analyst, json={"items": [ban]})
    assert taken.status_code == 202
    assert taken.json()["accepted"] == 1
    price = api.post("/v1/prices", headers=analyst, json={"items": [GALLIUM | {"classification": "restricted"}]})
    assert price.json()["accepted"] == 1

    above = api.post(
        "/v1/prices",
        headers=analyst,
        json={
            "items": [
                GALLIUM | {"price": 340, "classification": "restricted"},
                GALLIUM | {"price": 341, "classification": "government"},
            ]
        },
    )
    assert above.status_code == 403
    assert above.json()["detail"] == "item 1 is classified government, above the API key's clearance restricted"
    public_key = api.post(
        "/v1/prices", headers=AUTH, json={"items": [GALLIUM | {"price": 342, "classification": "restricted"}]}
    )
    assert public_key.status_code == 403
    assert "above the API key's clearance public" in public_key.json()["detail"]
    unknown = api.post("/v1/prices", headers=analyst, json={"items": [GALLIUM | {"classification": "secret"}]})
    assert unknown.json()["items"][0]["status"] == "rejected"
    assert "classification" in unknown.json()["items"][0]["reason"]

    news = await read_topic(kafka_bootstrap, kafka_topics, topics.NEWS, expect=1)
    assert [(e.material, e.classification) for _, e, _ in news if isinstance(e, NewsReported)] == [
        ("gallium", Classification.RESTRICTED)
    ]
    prices = await read_topic(kafka_bootstrap, kafka_topics, topics.PRICES, expect=1)
    assert [(e.price, e.classification) for _, e, _ in prices] == [(338.5, Classification.RESTRICTED)]


async def test_news_carries_its_topic_and_figures_given_or_read_and_bad_ones_are_refused(
    api, kafka_bootstrap, kafka_topics
):
    result = api.post(
        "/v1/news",
        headers=AUTH,
        json={
            "items": [
                {"title": "Gallium lead times stretch to eighteen weeks", "published_at": "2025-02-03T08:00:00Z"},
                {
                    "title": "Germanium smelter in Yunnan halts output",
                    "published_at": "2025-02-04T08:00:00Z",
                    "topic": "production",
                    "price_change_pct": 20,
                },
                {"title": "Antimony prices jump", "published_at": "2025-02-05T08:00:00Z", "topic": "rumour"},
                {"title": "Antimony prices jump", "published_at": "2025-02-05T08:00:00Z", "price_change_pct": "nan"},
            ]
        },
    ).json()
    assert [r["status"] for r in result["items"]] == ["accepted", "accepted", "rejected", "rejected"]
    assert "topic" in result["items"][2]["reason"]
    assert "price_change_pct" in result["items"][3]["reason"]

    news = await read_topic(kafka_bootstrap, kafka_topics, topics.NEWS, expect=2)
    assert sorted(
        (e.material, e.topic, e.leadtime_days, e.price_change_pct, e.relevant)
        for _, e, _ in news
        if isinstance(e, NewsReported)
    ) == [("gallium", "leadtime", 126, None, True), ("germanium", "production", None, 20.0, True)]
