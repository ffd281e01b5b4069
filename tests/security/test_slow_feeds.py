"""A fetch ends within its timeout however slowly a server sends, and a slow source never holds the others
(hole 5 of issue 11): sources are polled concurrently."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from services.ingest.config import parse_sources
from services.ingest.fetch import FetchError, FetchLimits, Validators, fetch_url
from services.ingest.poll import open_ingestion, poll_forever, poll_once
from services.ingest.settings import IngestSettings
from shared.outbound import OutboundPolicy, pinned_transport
from tests.eventually import eventually
from tests.security.network import Server, answer, serving, trickle

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
PRICES = (FIX / "prices.csv").read_bytes()
SLOW_BODY = PRICES[:60]  # a minute's worth at one byte a second


async def test_a_server_sending_one_byte_a_second_is_cut_off_at_the_fetch_timeout():
    server = Server()
    server.routes["/slow.csv"] = trickle(SLOW_BODY, server, "/slow.csv")
    with serving(server):
        # The loopback server is reachable only because this client opts in to private targets.
        async with httpx.AsyncClient(transport=pinned_transport(OutboundPolicy(allow_private=True))) as client:
            with pytest.raises(FetchError) as failed:
                await fetch_url(client, server.url("/slow.csv"), Validators(), FetchLimits(timeout_s=2.0, retries=0))
    assert failed.value.code == "timeout"
    # Each read came well within the per-read timeout; only a deadline over the whole fetch ends it early.
    assert 0 < sum(1 for event, _, _ in server.events if event == "byte") < len(SLOW_BODY) // 2


def sources(slow: str, normal: str) -> str:
    return (
        f'[[source]]\nname = "slow"\nkind = "csv_prices"\nurl = "{slow}"\ncurrency = "USD"\nunit = "kg"\n'
        f'interval = "1h"\n'
        f'[[source]]\nname = "normal"\nkind = "csv_prices"\nurl = "{normal}"\ncurrency = "USD"\nunit = "kg"\n'
        f'interval = "1h"\n'
    )


def settings_for(bootstrap: str, namespace: str, state: Path) -> IngestSettings:
    return IngestSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_namespace=namespace,
        state_dir=state,
        fetch_timeout_s=3.0,
        fetch_retries=0,
        allow_private_sources=True,
    )


@pytest.mark.integration
async def test_a_trickling_source_listed_first_does_not_delay_the_normal_one(kafka_bootstrap, kafka_topics, tmp_path):
    server = Server()
    server.routes["/slow.csv"] = trickle(SLOW_BODY, server, "/slow.csv")
    server.routes["/prices.csv"] = answer(200, PRICES)
    with serving(server):
        config = parse_sources(sources(server.url("/slow.csv"), server.url("/prices.csv")), tmp_path)
        async with open_ingestion(settings_for(kafka_bootstrap, kafka_topics, tmp_path / "state")) as ingestion:
            reports = {r.source: r for r in await poll_once(config, ingestion)}
    assert reports["normal"].counts == {"published": 6}
    assert reports["slow"].error.startswith("timeout")
    # The normal source was fetched before the slow one had finished sending (both start at once), not after it.
    normal_at = server.order_of("request", "/prices.csv")
    assert all(n > normal_at for event, _, n in server.events if event == "finished")


@pytest.mark.integration
async def test_the_poll_loop_keeps_every_source_on_its_own_schedule(kafka_bootstrap, kafka_topics, tmp_path):
    server = Server()
    server.routes["/slow.csv"] = trickle(SLOW_BODY, server, "/slow.csv")
    server.routes["/prices.csv"] = answer(200, PRICES)
    health: dict = {}
    stop = asyncio.Event()
    with serving(server):
        config = parse_sources(sources(server.url("/slow.csv"), server.url("/prices.csv")), tmp_path)
        async with open_ingestion(settings_for(kafka_bootstrap, kafka_topics, tmp_path / "state")) as ingestion:
            loop = asyncio.create_task(poll_forever(config, ingestion, health, stop))
            await eventually(
                lambda: "normal" in health and health["normal"].last_success is not None,
                within=10,
                what="the normal feed polled",
            )
            normal_done_while_slow_sending = not any(e == "finished" for e, _, _ in server.events)
            stop.set()
            await asyncio.wait_for(loop, 10)
    assert health["normal"].last_counts == {"published": 6}
    assert normal_done_while_slow_sending
