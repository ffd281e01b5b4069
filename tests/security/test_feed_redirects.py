"""Feeds reach only public addresses, at every redirect hop: a refused hop is dead-lettered as `unsafe_redirect`,
and the poller never connects to what it refused (hole 1 of issue 11)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from services.ingest.config import parse_sources
from services.ingest.poll import open_ingestion, poll_once
from services.ingest.settings import IngestSettings
from shared import topics
from shared.outbound import OutboundPolicy, pinned_transport
from tests.integration.ingest.conftest import read_topic
from tests.security.network import PUBLIC, Server, StagedNetwork, StubResolver, answer, redirect, serving

pytestmark = pytest.mark.integration
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def csv_sources(urls: dict[str, str]) -> str:
    return "".join(
        f'[[source]]\nname = "{name}"\nkind = "csv_prices"\nurl = "{url}"\ncurrency = "USD"\nunit = "kg"\n'
        for name, url in urls.items()
    )


def settings_for(bootstrap: str, namespace: str, state: Path, **overrides: object) -> IngestSettings:
    return IngestSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_namespace=namespace,
        state_dir=state,
        fetch_backoff_s=0.01,
        fetch_retries=1,
        **overrides,
    )


async def test_redirects_to_private_mapped_tunnelled_or_loopback_addresses_are_dead_lettered_unfetched(
    kafka_bootstrap, kafka_topics, tmp_path
):
    server = Server()
    with serving(server):
        secret = server.url("/secret")
        hops = {
            "metadata": "http://169.254.169.254/latest/meta-data/",
            "mapped": "http://[::ffff:169.254.169.254]/latest/meta-data/",
            "sixtofour": "http://[2002:a9fe:a9fe::]/latest/meta-data/",
            "nat64": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
            "loopback": secret,
            "loopback6": f"http://[::1]:{server.port}/secret",
            "named": "http://metadata.test/latest/meta-data/",  # a name that resolves to link-local
            "private": "http://intranet.test/prices.csv",
            "port0": "http://feeds.test:0/prices.csv",
        }
        server.routes.update({f"/{name}": redirect(location) for name, location in hops.items()})
        server.routes["/fine"] = redirect("http://feeds.test/prices.csv")  # a redirect that stays public
        server.routes["/prices.csv"] = answer(200, (FIX / "prices.csv").read_bytes())
        server.routes["/secret"] = answer(200, (FIX / "prices.csv").read_bytes())
        resolver = StubResolver(
            feeds_test=[[PUBLIC]], metadata_test=[["169.254.169.254"]], intranet_test=[["10.0.0.7"]]
        )
        network = StagedNetwork({PUBLIC: server.port})
        config = parse_sources(csv_sources({name: f"http://feeds.test/{name}" for name in [*hops, "fine"]}), tmp_path)
        async with open_ingestion(settings_for(kafka_bootstrap, kafka_topics, tmp_path / "state")) as ingestion:
            client = httpx.AsyncClient(transport=pinned_transport(OutboundPolicy(resolve=resolver), inner=network))
            async with client:
                reports = {r.source: r for r in await poll_once(config, dataclasses.replace(ingestion, client=client))}

    assert reports["fine"].counts == {"published": 6}
    for name in hops:
        assert reports[name].outcome == "error", name
        assert reports[name].error.startswith("unsafe_redirect"), reports[name].error
    assert "169.254.169.254" in reports["sixtofour"].error
    assert server.requested("/secret") == 0
    # The only connections asked for went to the checked public address: none was even attempted elsewhere.
    assert {host for host, _ in network.attempts} == {PUBLIC}

    dead = await read_topic(kafka_bootstrap, kafka_topics, topics.DEADLETTER, expect=len(hops))
    reasons = {event.source: event.reason for _, event, _ in dead}
    assert set(reasons) == set(hops)
    assert all(reason.startswith("unsafe_redirect: ") for reason in reasons.values())


async def test_a_feed_name_rebinding_to_loopback_is_refused_on_its_next_connection(
    kafka_bootstrap, kafka_topics, tmp_path
):
    server = Server(routes={"/prices.csv": answer(200, (FIX / "prices.csv").read_bytes())})
    with serving(server):
        resolver = StubResolver(feeds_test=[[PUBLIC], ["127.0.0.1"]])
        network = StagedNetwork({PUBLIC: server.port})
        config = parse_sources(csv_sources({"rebinding": "http://feeds.test/prices.csv"}), tmp_path)
        reports = []
        async with open_ingestion(settings_for(kafka_bootstrap, kafka_topics, tmp_path / "state")) as ingestion:
            for _ in range(2):  # a client per poll: each poll opens a new connection and resolves again
                transport = pinned_transport(OutboundPolicy(resolve=resolver), inner=network)
                async with httpx.AsyncClient(transport=transport) as client:
                    [report] = await poll_once(config, dataclasses.replace(ingestion, client=client))
                    reports.append(report)
    assert reports[0].counts == {"published": 6}
    assert reports[1].error.startswith("unsafe_target: address 127.0.0.1 is loopback")
    assert resolver.calls == ["feeds.test", "feeds.test"]
    assert network.attempts == [(PUBLIC, 80)]
    assert server.requested("/prices.csv") == 1


async def test_a_source_on_a_loopback_address_is_refused_unless_private_sources_are_allowed(
    kafka_bootstrap, kafka_topics, tmp_path
):
    server = Server(routes={"/prices.csv": answer(200, (FIX / "prices.csv").read_bytes())})
    with serving(server):
        config = parse_sources(csv_sources({"local": server.url("/prices.csv")}), tmp_path)
        async with open_ingestion(settings_for(kafka_bootstrap, kafka_topics, tmp_path / "refused")) as ingestion:
            [refused] = await poll_once(config, ingestion)
        assert server.requested("/prices.csv") == 0
        allowed = settings_for(kafka_bootstrap, kafka_topics, tmp_path / "allowed", allow_private_sources=True)
        async with open_ingestion(allowed) as ingestion:
            [fetched] = await poll_once(config, ingestion)
    assert refused.error.startswith("unsafe_target: address 127.0.0.1 is loopback")
    assert fetched.counts == {"published": 6}
    dead = await read_topic(kafka_bootstrap, kafka_topics, topics.DEADLETTER, expect=1)
    assert [event.reason.split(":")[0] for _, event, _ in dead] == ["unsafe_target"]


def test_production_refuses_the_private_sources_allowance() -> None:
    with pytest.raises(ValidationError, match="MEWS_INGEST_ALLOW_PRIVATE_SOURCES"):
        IngestSettings(environment="production", allow_private_sources=True)
