"""The publisher without a broker: exact de-duplication per batch, seen keys only for what Kafka acknowledged.

The fake producer subclasses the real one and answers `send_acknowledged` as a broker would, or as one that
does not acknowledge some writes in time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.observation import Accepted, Rejected, Skipped
from services.ingest.publish import Item, NotPublished, Publisher
from services.ingest.seen import SeenStore
from shared import topics
from shared.events import DeadLettered, PriceObserved
from shared.kafka import EventProducer, Submission


class FakeSubmission(Submission):
    """Acknowledges as decided at submission, once `hold` (if any) is set."""

    def __init__(self, owner: EventProducer, acks: list[bool], hold: asyncio.Event | None) -> None:
        super().__init__(owner, None, [], len(acks), 0.0)
        self.acks, self.hold = acks, hold

    async def acknowledged(self) -> list[bool]:
        if self.hold is not None:
            await self.hold.wait()
        return self.acks


class FakeProducer(EventProducer):
    """Keeps what it is given; acknowledges everything except the events whose price is in `refuse`."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", source="tests/ingest")
        self.written: list[tuple[str, object, str | None]] = []
        self.refuse: set[float] = set()
        self.hold: asyncio.Event | None = None

    async def submit(self, items, *, within):
        acks = []
        for topic, event, _key, event_id in items:
            ok = getattr(event, "price", None) not in self.refuse  # as the broker stands at submission
            if ok:
                self.written.append((topic.name, event, event_id))
            acks.append(ok)
        return FakeSubmission(self, acks, self.hold)

    def prices(self) -> list[float]:
        return [e.price for _, e, _ in self.written if isinstance(e, PriceObserved)]


def price_item(price: float, day: int = 0) -> Item:
    event = PriceObserved(
        material="gallium",
        source="test",
        observed_at=datetime(2023, 1, 1, tzinfo=UTC) + timedelta(days=day),
        price=price,
        currency="USD",
        unit="kg",
    )
    return Item("price", "test", Accepted((event,)), b"raw")


@pytest.fixture
async def setup(tmp_path):
    producer = FakeProducer()
    seen = SeenStore(tmp_path / "seen.sqlite3")
    yield Publisher(producer, seen, within=1.0), producer, seen
    seen.close()


async def test_two_identical_items_in_one_batch_publish_once_and_a_repeat_in_a_later_batch_is_a_duplicate(setup):
    publisher, producer, _ = setup
    first = await publisher.publish([price_item(300.0, 1), price_item(300.0, 1), price_item(310.0, 2)])
    assert [d.status for d in first] == ["published", "duplicate", "published"]
    later = await publisher.publish([price_item(300.0, 1), price_item(320.0, 3)])
    assert [d.status for d in later] == ["duplicate", "published"]
    assert producer.prices() == [300.0, 310.0, 320.0]


async def test_an_item_kafka_did_not_acknowledge_is_not_seen_so_its_retry_publishes_it_once(setup):
    publisher, producer, seen = setup
    producer.refuse = {310.0}
    with pytest.raises(NotPublished) as refused:
        await publisher.publish([price_item(300.0, 1), price_item(310.0, 2)])
    assert [(d.status, d.code) for d in refused.value.decisions] == [("published", ""), ("failed", "not_acknowledged")]
    producer.refuse = set()
    retried = await publisher.publish([price_item(300.0, 1), price_item(310.0, 2)])
    assert [d.status for d in retried] == ["duplicate", "published"]
    assert producer.prices() == [300.0, 310.0]


async def test_concurrent_batches_with_the_same_item_publish_it_once(setup):
    publisher, producer, _ = setup
    producer.hold = asyncio.Event()
    first = asyncio.create_task(publisher.publish([price_item(300.0, 1)]))
    second = asyncio.create_task(publisher.publish([price_item(300.0, 1), price_item(301.0, 9)]))
    await asyncio.sleep(0.05)
    producer.hold.set()
    assert [d.status for d in await first] == ["published"]
    assert [d.status for d in await second] == ["duplicate", "published"]
    assert producer.prices() == [300.0, 301.0]


async def test_a_concurrent_batch_that_fails_leaves_its_item_to_the_waiting_batch(setup):
    publisher, producer, _ = setup
    producer.hold, producer.refuse = asyncio.Event(), {300.0}
    first = asyncio.create_task(publisher.publish([price_item(300.0, 1)]))
    await asyncio.sleep(0.02)
    second = asyncio.create_task(publisher.publish([price_item(300.0, 1)]))
    await asyncio.sleep(0.02)
    producer.refuse = set()
    producer.hold.set()
    with pytest.raises(NotPublished):
        await first
    assert [d.status for d in await second] == ["published"]
    assert producer.prices() == [300.0]


async def test_rejected_feed_items_are_dead_lettered_with_their_bytes_and_api_items_are_not(setup):
    publisher, producer, _ = setup
    bad = Item("price", "feed", Rejected("invalid_price", "price must be positive"), b"gallium,-1")
    quiet = Item("news", "feed", Skipped("no_material", "names no catalog material"), b"<item/>")
    decisions = await publisher.publish([bad, quiet, price_item(300.0)])
    assert [d.status for d in decisions] == ["rejected", "skipped", "published"]
    letters = [e for name, e, _ in producer.written if name == topics.DEADLETTER.name]
    assert len(letters) == 1
    assert isinstance(letters[0], DeadLettered)
    assert letters[0].original() == b"gallium,-1"
    assert letters[0].reason == "invalid_price: price must be positive"

    producer.written.clear()
    api = await publisher.publish([bad, price_item(301.0, 5)], dead_letter=False)
    assert [d.status for d in api] == ["rejected", "published"]
    assert [name for name, _, _ in producer.written] == [topics.PRICES.name]


async def test_a_batch_of_ten_thousand_is_checked_and_recorded_once_each(setup):
    publisher, producer, seen = setup
    items = [price_item(100.0 + i, i) for i in range(10_000)]
    assert {d.status for d in await publisher.publish(items)} == {"published"}
    assert len(producer.written) == 10_000
    assert len(seen.seen([k for it in items for k in it.outcome.dedup_keys()])) == 10_000
    again = await publisher.publish(items[:10] + [price_item(99.0, 20_000)])
    assert [d.status for d in again] == ["duplicate"] * 10 + ["published"]


async def test_every_event_carries_the_id_of_its_own_dedup_key(setup):
    publisher, producer, _ = setup
    from shared.kafka import event_id_for

    item = price_item(300.0, 4)
    await publisher.publish([item])
    ((_, event, event_id),) = producer.written
    assert event_id == event_id_for(event.dedup_key())


async def test_a_request_in_chunks_keeps_its_order_and_answers_per_item_when_a_chunk_is_not_taken(setup, catalog):
    import hashlib

    import httpx

    from services.ingest import api
    from services.ingest.normalise import Ingestion
    from shared.service_keys import parse_keys

    publisher, producer, seen = setup
    key = parse_keys(f"{hashlib.sha256(b'k').hexdigest()}:ingest")[0]
    async with httpx.AsyncClient() as client:
        ingestion = Ingestion(
            publisher=publisher, seen=seen, catalog=catalog, classify=lambda *a, **k: None, client=client
        )
        day = datetime(2019, 1, 1, tzinfo=UTC)  # 2 chunks and more of days, all in the past
        raw = [
            {
                "material": "gallium",
                "price": 100 + i,
                "currency": "USD",
                "unit": "kg",
                "source": "t",
                "observed_at": (day + timedelta(days=i)).isoformat(),
            }
            for i in range(api.PUBLISH_CHUNK * 2 + 10)
        ]
        raw[3]["price"] = -1  # rejected, answered in its place
        producer.refuse = {100.0 + api.PUBLISH_CHUNK + 5}  # one item of the second chunk is not acknowledged
        loop = asyncio.get_running_loop()
        with pytest.raises(NotPublished) as refused:
            await api.publish_in_chunks("price", api.validate_items("price", raw), key, ingestion, loop.time() + 5)
        statuses = [d.status for d in refused.value.decisions]
        assert len(statuses) == len(raw)
        assert statuses[3] == "rejected"
        assert statuses[api.PUBLISH_CHUNK + 5] == "failed"
        assert statuses.count("published") == len(raw) - 2

        producer.refuse = set()
        retried = await api.publish_in_chunks(
            "price", api.validate_items("price", raw), key, ingestion, loop.time() + 5
        )
        assert [d.status for d in retried].count("duplicate") == len(raw) - 2
        assert retried[api.PUBLISH_CHUNK + 5].status == "published"
    prices = producer.prices()
    assert sorted(prices) == sorted({100.0 + i for i in range(len(raw)) if i != 3})  # each once
    first_pass = prices[:-1]
    assert first_pass == sorted(first_pass)  # chunks reached the producer in request order


async def test_the_newest_item_gauge_dates_a_trade_flow_by_its_period_start_and_a_stock_count_by_its_date(setup):
    from prometheus_client import REGISTRY

    from shared.events import StockReported, TradeFlowReported

    publisher, _, _ = setup
    flows = tuple(
        TradeFlowReported(
            material="gallium",
            source="comext-test",
            reporter="EU27",
            partner="CN",
            hs_code="811292",
            period=period,
            quantity_kg=1.0,
        )
        for period in ("2023-04", "2023")
    )
    stock = StockReported(
        material="gallium", source="stock-test", reported_at=datetime(2023, 6, 30, tzinfo=UTC), tonnes=5.0
    )
    await publisher.publish(
        [Item("trade", "comext-test", Accepted(flows), b"raw"), Item("stock", "stock-test", Accepted((stock,)), b"raw")]
    )

    def newest(source: str, kind: str) -> float | None:
        return REGISTRY.get_sample_value("mews_ingest_newest_item_timestamp_seconds", {"source": source, "kind": kind})

    assert newest("comext-test", "trade") == datetime(2023, 4, 1, tzinfo=UTC).timestamp()  # the later period
    assert newest("stock-test", "stock") == datetime(2023, 6, 30, tzinfo=UTC).timestamp()
