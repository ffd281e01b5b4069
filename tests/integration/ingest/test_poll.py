"""Feeds served over HTTP on 127.0.0.1 arrive on their topics once, bad items on the dead-letter topic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from services.ingest.config import parse_sources
from services.ingest.poll import open_ingestion, poll_once, run_source
from services.ingest.settings import IngestSettings
from shared import topics
from shared.events import DeadLettered, PriceObserved

from .conftest import read_topic

pytestmark = pytest.mark.integration
FIX = Path(__file__).resolve().parents[2] / "fixtures" / "ingest"


def settings_for(bootstrap: str, namespace: str, state: Path) -> IngestSettings:
    # The feed server listens on loopback, which only this explicit development setting lets the poller reach.
    return IngestSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_namespace=namespace,
        state_dir=state,
        fetch_backoff_s=0.01,
        fetch_retries=2,
        fetch_max_bytes=1_000_000,
        allow_private_sources=True,
    )


def sources_toml(feed_server) -> str:
    good = feed_server.put("/prices.csv", (FIX / "prices.csv").read_bytes(), "text/csv")
    bad = feed_server.put("/hostile.csv", (FIX / "hostile" / "prices_hostile.csv").read_bytes(), "text/csv")
    return f'''
[[source]]
name = "demo-prices"
kind = "csv_prices"
url = "{good}"
currency = "USD"
unit = "kg"

[[source]]
name = "hostile-prices"
kind = "csv_prices"
url = "{bad}"
currency = "USD"
unit = "kg"
'''


async def test_feed_items_arrive_once_across_refetch_and_restart_and_bad_rows_are_dead_lettered(
    kafka_topics, kafka_bootstrap, feed_server, tmp_path
):
    config = parse_sources(sources_toml(feed_server), tmp_path)
    settings = settings_for(kafka_bootstrap, kafka_topics, tmp_path / "state")

    async with open_ingestion(settings) as ingestion:
        first = await poll_once(config, ingestion)
        second = await poll_once(config, ingestion)
    assert [r.outcome for r in first] == ["ok", "ok"]
    assert first[0].counts == {"published": 6}
    # 4 good rows; 8 refused: 2 malformed, NaN, negative, inf, unknown material, far future, bad bytes
    assert first[1].counts == {"published": 4, "rejected": 8}
    assert [r.outcome for r in second] == ["not_modified", "not_modified"]
    assert feed_server.not_modified == {"/prices.csv": 1, "/hostile.csv": 1}

    # A restart that forgets nothing but the process: the ETag store is bypassed by changing the document,
    # so everything is fetched again and only the seen-keys store keeps it from being published twice.
    feed_server.put("/prices.csv", (FIX / "prices.csv").read_bytes() + b"2023-09-29,gallium,350,USD,kg,\n")
    async with open_ingestion(settings) as ingestion:
        third = await run_source(config.by_name("demo-prices"), ingestion)
    assert third.counts == {"published": 1, "duplicate": 6}

    prices = await read_topic(kafka_bootstrap, kafka_topics, topics.PRICES, expect=6 + 4 + 1)
    events = [e for _, e, _ in prices]
    assert all(isinstance(e, PriceObserved) for e in events)
    assert len(events) == 11
    assert len({env["id"] for env, _, _ in prices}) == 11
    assert sorted(e.price for e in events if e.source == "hostile-prices") == [302.0, 315.0, 320.0, 1300.0]
    assert {k for _, _, k in prices} == {b"gallium", b"germanium"}

    dead = await read_topic(kafka_bootstrap, kafka_topics, topics.DEADLETTER, expect=8)
    letters = [e for _, e, _ in dead]
    assert all(isinstance(e, DeadLettered) for e in letters)
    reasons = sorted(e.reason.split(":")[0] for e in letters)
    assert reasons == sorted(
        [
            "malformed_row",
            "malformed_row",
            "invalid_price",
            "invalid_price",
            "invalid_price",
            "unknown_material",
            "future_time",
            "encoding",
        ]
    )
    assert {e.intended_topic for e in letters} == {topics.PRICES.qualified(kafka_topics)}
    assert any(b"unobtainium" in e.original() for e in letters)


async def test_hostile_fetches_fail_with_reasons_and_the_other_sources_still_run(
    kafka_topics, kafka_bootstrap, feed_server, tmp_path
):
    ok = feed_server.put("/prices.csv", (FIX / "prices.csv").read_bytes())
    feed_server.failures_left["/prices.csv"] = 2  # two 503s, then the document: retried with backoff
    text = "".join(
        f'''
[[source]]
name = "{name}"
kind = "{kind}"
url = "{url}"
currency = "USD"
unit = "kg"
'''
        for name, kind, url in [
            ("loop", "feed", feed_server.base + "/loop"),
            ("ftp", "feed", feed_server.base + "/to-ftp"),
            ("endless", "csv_prices", feed_server.base + "/endless"),
            ("laughs", "feed", feed_server.put("/laughs.xml", (FIX / "hostile" / "billion_laughs.xml").read_bytes())),
            ("flaky", "csv_prices", ok),
        ]
    )
    config = parse_sources(text, tmp_path)
    async with open_ingestion(settings_for(kafka_bootstrap, kafka_topics, tmp_path / "state")) as ingestion:
        reports = {r.source: r for r in await poll_once(config, ingestion)}
    assert reports["loop"].outcome == "error"
    assert reports["loop"].error.startswith("redirects")
    assert reports["ftp"].error.startswith("scheme")
    assert reports["endless"].error.startswith("too_large")
    assert reports["laughs"].outcome == "ok"
    assert reports["laughs"].counts == {"rejected": 1}
    assert reports["flaky"].counts == {"published": 6}
    assert feed_server.requests["/prices.csv"] == 3

    dead = await read_topic(kafka_bootstrap, kafka_topics, topics.DEADLETTER, expect=4)
    by_source = {e.source: e.reason for _, e, _ in dead}
    assert set(by_source) == {"loop", "ftp", "endless", "laughs"}
    assert by_source["laughs"].startswith("unsafe_xml")


async def test_news_from_rss_and_atom_is_classified_once_per_material_and_reposts_are_duplicates(
    kafka_topics, kafka_bootstrap, feed_server, tmp_path
):
    rss = feed_server.put("/controls.rss", (FIX / "export_controls.rss").read_bytes(), "application/rss+xml")
    atom = feed_server.put("/watch.atom", (FIX / "export_controls.atom").read_bytes(), "application/atom+xml")
    config = parse_sources(
        f'[[source]]\nname = "rss"\nkind = "feed"\nurl = "{rss}"\n'
        f'[[source]]\nname = "atom"\nkind = "feed"\nurl = "{atom}"\n',
        tmp_path,
    )
    async with open_ingestion(settings_for(kafka_bootstrap, kafka_topics, tmp_path / "state")) as ingestion:
        reports = {r.source: r for r in await poll_once(config, ingestion)}
    # RSS: gallium+germanium item, antimony item, and an annual report naming no material (skipped).
    # Atom: the 2024 ban, the graphite permits, and a re-post of the 2023 item under another link. The two
    # sources run concurrently, so either the RSS item or its Atom re-post is the one published first.
    assert reports["rss"].counts.get("skipped") == 1
    assert Counter(reports["rss"].counts) + Counter(reports["atom"].counts) == Counter(
        {"published": 4, "skipped": 1, "duplicate": 1}
    )
    news = await read_topic(kafka_bootstrap, kafka_topics, topics.NEWS, expect=1)
    by_item: dict[str, set[str]] = {}
    imposers: dict[str, list[str] | None] = {}
    for _, event, key in news:
        assert key == event.material.encode()
        by_item.setdefault(event.title, set()).add(event.material)
        imposers[event.title] = event.imposed_by
    assert by_item["China announces export controls on gallium and germanium items"] == {"gallium", "germanium"}
    assert by_item["China to restrict exports of antimony from 15 September"] == {"antimony"}
    assert {"gallium", "germanium", "antimony"} <= by_item[
        "China bans exports of gallium, germanium and antimony to the United States"
    ]
    assert imposers["China bans exports of gallium, germanium and antimony to the United States"] == ["CN"]
