"""The read API fed by the view from the real indicators and breaches topics, in-process."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from services.scoring.api import create_api
from services.scoring.settings import ScoringSettings
from services.scoring.view import MaterialsView, ViewFeed
from shared import topics as declared
from shared.events import BreachRaised, Classification, Evidence, IndicatorSnapshot
from shared.kafka import EventProducer
from tests.eventually import eventually

from .conftest import PUBLIC_KEY, READ_KEY, sha256_hex

pytestmark = pytest.mark.integration
T = datetime(2025, 3, 3, tzinfo=UTC)


def _breach(material: str, rule: str, level: Classification, status: str = "firing") -> BreachRaised:
    return BreachRaised(
        fingerprint=f"{material}:{rule}",
        material=material,
        rule=rule,
        indicator="price",
        severity="warning",
        status=status,
        value=1.0,
        starts_at=T,
        observed_at=T,
        summary=rule,
        evidence=[Evidence(id=f"{rule}-e", source="s", kind="price", time=T, classification=level)],
        classification=level,
    )


async def test_read_api_answers_from_the_topics_and_hides_government_breaches_from_public_keys(
    kafka_topics, kafka_bootstrap
):
    producer = EventProducer(kafka_bootstrap, source="tests/scoring", namespace=kafka_topics)
    await producer.start()
    # Written before the view starts (it must read from the beginning) and after (it must keep following).
    await producer.send(
        declared.INDICATORS, IndicatorSnapshot(material="gallium", as_of=T, indicators={"price": 5.0}, risk_score=64.0)
    )
    await producer.send(
        declared.INDICATORS, IndicatorSnapshot(material="gallium", as_of=T, indicators={"price": 6.0}, risk_score=72.0)
    )
    view = MaterialsView()
    feed = ViewFeed(kafka_bootstrap, kafka_topics, view)
    await feed.start()
    settings = ScoringSettings(api_keys=f"{sha256_hex(READ_KEY)}:government,{sha256_hex(PUBLIC_KEY)}")
    api = create_api(settings, view, {"view": feed.readiness})
    try:
        await producer.send(
            declared.INDICATORS,
            IndicatorSnapshot(material="germanium", as_of=T, indicators={"price": 1.0}, risk_score=90.0),
        )
        for b in (
            _breach("gallium", "public-rule", Classification.PUBLIC),
            _breach("gallium", "gov-rule", Classification.GOVERNMENT),
            _breach("gallium", "gone", Classification.PUBLIC),
            _breach("gallium", "gone", Classification.PUBLIC, status="resolved"),
        ):
            await producer.send(declared.BREACHES, b, key=b.fingerprint)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://scoring") as client:
            gov = {"Authorization": f"Bearer {READ_KEY}"}
            pub = {"Authorization": f"Bearer {PUBLIC_KEY}"}

            async def all_in():
                r = await client.get("/v1/materials/gallium", headers=gov)
                ranked = (await client.get("/v1/risk", headers=gov)).json()
                return r.status_code == 200 and len(r.json()["open_breaches"]) == 2 and len(ranked) == 2

            await eventually(all_in, within=15, what="both breaches and both risk scores served")
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/v1/materials/gallium")).status_code == 401
            gallium = (await client.get("/v1/materials/gallium", headers=gov)).json()
            assert gallium["indicators"] == {"price": 6.0}  # the latest snapshot of the material
            assert {b["rule"] for b in gallium["open_breaches"]} == {"public-rule", "gov-rule"}
            public = (await client.get("/v1/materials/gallium", headers=pub)).json()
            assert [b["rule"] for b in public["open_breaches"]] == ["public-rule"]
            ranked = (await client.get("/v1/risk", headers=pub)).json()
            assert [(r["material"], r["risk_score"]) for r in ranked] == [("germanium", 90.0), ("gallium", 72.0)]
    finally:
        await feed.stop()
        await producer.stop()
