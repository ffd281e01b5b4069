"""Hostile documents end as dead letters with a reason, never as a traceback ending the poll (the feed side of
hole 4 of issue 11): nesting deeper than the parser follows, integers longer than Python converts, bytes not
in the declared encoding, entity bombs."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ingest.config import parse_sources
from services.ingest.poll import open_ingestion, poll_once
from services.ingest.settings import IngestSettings
from shared import topics
from tests.integration.ingest.conftest import read_topic
from tests.security.network import Server, answer, serving

pytestmark = pytest.mark.integration
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
RECORD = b'{"date": "2024-01-02", "material": "gallium", "price": %s, "currency": "USD", "unit": "kg"}'
RSS = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><item>%s</item></channel></rss>'
)

HOSTILE = {
    # name: (kind, body, the reason code of its dead letter)
    "deep_json": ("json_prices", b"[" * 100_000 + b"]" * 100_000, "malformed_json"),
    "deep_items": ("json_prices", b'{"items": [' + RECORD % (b"[" * 5_000 + b"]" * 5_000) + b"]}", "malformed_json"),
    "huge_integer": ("json_prices", b"[" + RECORD % (b"9" * 5_000) + b"]", "malformed_json"),
    "latin1_json": (
        "json_prices",
        ("[" + (RECORD % b"1").decode() + ', {"note": "prix élevé"}]').encode("latin-1"),
        "encoding",
    ),
    "latin1_feed": ("feed", (FIX / "hostile" / "latin1_declared_utf8.xml").read_bytes(), "encoding"),
    "laughs": ("feed", (FIX / "hostile" / "billion_laughs.xml").read_bytes(), "unsafe_xml"),
    "external": ("feed", (FIX / "hostile" / "external_entity.xml").read_bytes(), "unsafe_xml"),
}


def source(name: str, kind: str, url: str) -> str:
    extra = 'currency = "USD"\nunit = "kg"\n' if kind != "feed" else ""
    return f'[[source]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\n{extra}'


async def test_hostile_documents_are_dead_lettered_with_reasons_and_the_poll_goes_on(
    kafka_bootstrap, kafka_topics, tmp_path
):
    server = Server()
    server.routes.update({f"/{name}": answer(200, body) for name, (_, body, _) in HOSTILE.items()})
    server.routes["/deep.rss"] = answer(200, RSS % (b"<title>" + b"<b>" * 50_000 + b"</b>" * 50_000 + b"</title>"))
    server.routes["/prices.csv"] = answer(200, (FIX / "prices.csv").read_bytes())
    with serving(server):
        text = "".join(source(name, kind, server.url(f"/{name}")) for name, (kind, _, _) in HOSTILE.items())
        text += source("deep_rss", "feed", server.url("/deep.rss"))
        text += source("normal", "csv_prices", server.url("/prices.csv"))
        settings = IngestSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_namespace=kafka_topics,
            state_dir=tmp_path / "state",
            allow_private_sources=True,
        )
        async with open_ingestion(settings) as ingestion:
            reports = {r.source: r for r in await poll_once(parse_sources(text, tmp_path), ingestion)}

    assert reports["normal"].counts == {"published": 6}
    for name in HOSTILE:
        assert reports[name].outcome == "ok", (name, reports[name].error)
        assert reports[name].counts.get("rejected", 0) >= 1, (name, reports[name].counts)
    assert reports["deep_rss"].outcome == "ok", reports["deep_rss"].error  # read or refused, but handled

    dead = await read_topic(kafka_bootstrap, kafka_topics, topics.DEADLETTER, expect=len(HOSTILE))
    codes: dict[str, set[str]] = {}
    for _, event, _ in dead:
        codes.setdefault(event.source, set()).add(event.reason.split(":")[0])
    for name, (_, _, code) in HOSTILE.items():
        assert code in codes[name], (name, codes.get(name))
