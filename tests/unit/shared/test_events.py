import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from pydantic import ValidationError

from shared.events import (
    BreachRaised,
    BreachStatus,
    Classification,
    DeadLettered,
    EnvelopeError,
    Evidence,
    IndicatorSnapshot,
    Measure,
    NewsReported,
    PriceObserved,
    Severity,
    decode,
    encode,
    to_cloudevent,
)


def price(**overrides):
    fields = dict(
        material="gallium",
        source="test",
        observed_at=datetime(2023, 7, 3, tzinfo=UTC),
        price=310.0,
        currency="USD",
        unit="kg",
    )
    fields.update(overrides)
    return PriceObserved(**fields)


def test_envelope_carries_the_cloudevents_required_attributes_and_material_subject():
    envelope = to_cloudevent(price(), source="mews/ingest")
    assert envelope["specversion"] == "1.0"
    assert envelope["type"] == "mews.price.observed.v1"
    assert envelope["source"] == "mews/ingest"
    assert envelope["subject"] == "gallium"
    assert envelope["id"]
    assert datetime.fromisoformat(envelope["time"]).tzinfo is not None
    assert envelope["data"]["price"] == 310.0


def test_encode_decode_round_trip_gives_the_same_event():
    event = price()
    _, decoded = decode(encode(event, source="s", event_id="abc"))
    assert decoded == event


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"specversion": "1.0"}', "lacks id, source, type, data"),
        (b'{"specversion": "0.3", "id": "1", "source": "s", "type": "t", "data": {}}', "specversion"),
        (b'{"specversion": "1.0", "id": "1", "source": "s", "type": "mews.nope.v9", "data": {}}', "unknown event type"),
    ],
)
def test_decode_rejects_malformed_envelopes_with_a_reason(raw, reason):
    with pytest.raises(EnvelopeError, match=reason):
        decode(raw)


@pytest.mark.parametrize("bad_price", [-1.0, 0.0, float("nan"), float("inf")])
def test_prices_must_be_positive_and_finite(bad_price):
    envelope = to_cloudevent(price(), source="s")
    envelope["data"]["price"] = bad_price
    with pytest.raises(EnvelopeError, match="price"):
        decode(json.dumps(envelope).encode())


def test_naive_timestamps_are_refused():
    envelope = to_cloudevent(price(), source="s")
    envelope["data"]["observed_at"] = "2023-07-03T00:00:00"
    with pytest.raises(EnvelopeError, match="observed_at"):
        decode(json.dumps(envelope).encode())


def test_decode_refuses_an_event_of_another_type_than_expected():
    with pytest.raises(EnvelopeError, match="expected mews.breach.v1"):
        decode(encode(price(), source="s"), expected=BreachRaised)


def test_building_an_event_with_an_unknown_field_is_refused_so_a_typo_cannot_reach_the_wire():
    with pytest.raises(ValidationError, match="prcie"):
        PriceObserved(**price().model_dump(), prcie=1)


def test_a_field_added_by_a_newer_producer_is_ignored_and_counted_so_a_rolling_deploy_never_dead_letters():
    envelope = to_cloudevent(price(), source="s")
    envelope["data"]["added_in_a_later_version"] = {"any": "shape"}
    before = REGISTRY.get_sample_value("mews_event_fields_ignored_total", {"type": PriceObserved.type}) or 0
    _, event = decode(json.dumps(envelope).encode(), PriceObserved)
    assert event == price()
    assert REGISTRY.get_sample_value("mews_event_fields_ignored_total", {"type": PriceObserved.type}) == before + 1


def test_a_required_field_missing_is_still_refused_with_its_name():
    envelope = to_cloudevent(price(), source="s")
    del envelope["data"]["price"]
    with pytest.raises(EnvelopeError, match="price"):
        decode(json.dumps(envelope).encode())


def test_dead_letter_keeps_the_original_bytes_exactly():
    raw = b"\x00\x01 broken <xml> \xff"
    letter = DeadLettered.of(raw, "not JSON", source="feed-a", stage="ingest")
    _, decoded = decode(encode(letter, source="s"))
    assert decoded.original() == raw
    assert base64.b64decode(decoded.original_b64) == raw


@pytest.mark.parametrize(
    ("clearance", "allowed"),
    [
        ("public", ["public"]),
        ("restricted", ["public", "restricted"]),
        ("government", ["public", "restricted", "government"]),
    ],
)
def test_a_clearance_allows_its_own_level_and_those_below_only(clearance, allowed):
    assert [level.value for level in Classification if Classification(clearance).allows(level)] == allowed
    assert [
        level for level in ("public", "restricted", "government") if Classification(clearance).allows(level)
    ] == allowed


def test_a_clearance_refuses_a_level_that_does_not_exist():
    with pytest.raises(ValueError, match="secret"):
        Classification.PUBLIC.allows("secret")


def test_most_restricted_classification_wins():
    levels = [Classification.PUBLIC, Classification.GOVERNMENT, Classification.RESTRICTED]
    assert Classification.most_restricted(levels) is Classification.GOVERNMENT
    assert Classification.most_restricted([]) is Classification.PUBLIC


def test_breach_round_trips_with_its_evidence():
    at = datetime(2023, 7, 4, tzinfo=UTC)
    breach = BreachRaised(
        fingerprint="f1",
        material="gallium",
        rule="price-change-1d",
        indicator="price_change_1d",
        severity=Severity.CRITICAL,
        status=BreachStatus.FIRING,
        value=0.42,
        threshold=0.4,
        starts_at=at,
        observed_at=at,
        summary="Gallium up 42%",
        evidence=[{"id": "e1", "source": "lme", "kind": "price", "time": at, "value": 310.0}],
    )
    _, decoded = decode(encode(breach, source="s"))
    assert decoded.evidence[0].id == "e1"
    assert decoded.severity is Severity.CRITICAL


# --- encode against the envelope as json.dumps writes it ---------------------------------------------------


def _as_json_dumps(event, *, source: str, event_id: str, time: str) -> bytes:
    """The bytes `encode` gave before it used pydantic's serializer: json.dumps of to_cloudevent."""
    envelope = to_cloudevent(event, source=source, event_id=event_id, time=datetime.fromisoformat(time))
    return json.dumps(envelope, separators=(",", ":")).encode()


texts = st.text(st.characters(codec="utf-8"), max_size=60)
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True),
    st.sampled_from([1e-5, 1e-7, 3.2e-05, 1e16, 1e22, -0.0, 0.1, 350.0]),
)
times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@st.composite
def events(draw: st.DrawFn):
    kind = draw(st.sampled_from(["price", "news", "breach", "snapshot", "deadletter"]))
    if kind == "price":
        return PriceObserved(
            material="gallium",
            source=draw(texts),
            observed_at=draw(times),
            price=draw(st.floats(min_value=5e-324, allow_infinity=False, exclude_min=False)),
            currency="USD",
            unit=draw(texts.filter(lambda x: len(x) <= 32)),
            series=draw(texts),
            url=draw(texts),
        )
    if kind == "news":
        return NewsReported(
            material="gallium",
            item_id=draw(texts),
            source=draw(texts),
            title=draw(texts),
            summary=draw(texts),
            published_at=draw(times),
            countries=["CN"],
            measure=draw(st.sampled_from(list(Measure))),
            relevant=draw(st.booleans()),
            score=draw(st.floats(0, 1)),
            evidence=draw(st.lists(texts, max_size=3)),
        )
    if kind == "breach":
        evidence = [
            Evidence(
                id=draw(texts),
                source=draw(texts),
                kind="price",
                time=draw(times),
                value=draw(st.one_of(floats, texts, st.none())),
                url=draw(texts),
            )
            for _ in range(draw(st.integers(0, 3)))
        ]
        return BreachRaised(
            fingerprint="f",
            material="gallium",
            rule=draw(texts),
            indicator="price",
            severity=Severity.WARNING,
            status=BreachStatus.FIRING,
            value=draw(floats),
            threshold=draw(st.one_of(floats, st.none())),
            starts_at=draw(times),
            observed_at=draw(times),
            summary=draw(texts),
            evidence=evidence,
        )
    if kind == "snapshot":
        return IndicatorSnapshot(
            material="gallium",
            as_of=draw(times),
            indicators=draw(st.dictionaries(texts, st.one_of(floats, st.none()), max_size=5)),
            risk_score=draw(st.one_of(floats, st.none())),
            components=draw(st.dictionaries(texts, floats, max_size=3)),
        )
    return DeadLettered.of(draw(st.binary(max_size=40)), draw(texts), source=draw(texts), stage="ingest")


@settings(max_examples=400, deadline=None)
@given(events(), texts, st.uuids())
def test_encoded_events_decode_to_what_the_json_dumps_envelope_decodes_to(event, source, event_id):
    encoded = encode(event, source=source, event_id=str(event_id))
    before = _as_json_dumps(event, source=source, event_id=str(event_id), time=json.loads(encoded)["time"])
    assert json.loads(encoded) == json.loads(before)
    assert list(json.loads(encoded)) == list(json.loads(before))  # the same keys, in the same order
    assert decode(encoded) == decode(before)
    assert decode(encoded)[1] == event
    assert encoded.isascii()


def test_encoded_events_are_the_json_dumps_bytes_but_for_tiny_floats_and_del():
    event = price(source='Zürich – 東京 \U0001f600 "q" \\ / \n\t\x01', price=1234.5678)
    encoded = encode(event, source="s", event_id="abc")
    assert encoded == _as_json_dumps(event, source="s", event_id="abc", time=json.loads(encoded)["time"])
    tiny = price(price=1e-05)
    encoded = encode(tiny, source="s", event_id="abc")
    assert b'"price":0.00001' in encoded
    assert decode(encoded)[1].price == 1e-05


def test_every_signal_kind_has_one_event_class_and_one_topic_and_each_input_topic_one_kind():
    from shared import topics
    from shared.events import SIGNALS

    assert sorted(SIGNALS) == ["leadtime", "news", "price", "stock", "trade"]
    assert all(signal.event.kind == kind for kind, signal in SIGNALS.items())
    assert sorted(s.topic.name for s in SIGNALS.values()) == sorted(
        t.name for t in (topics.PRICES, topics.NEWS, topics.TRADE, topics.LEADTIMES, topics.STOCKS)
    )


def test_the_event_time_of_each_signal_is_the_time_it_states_and_of_a_trade_flow_its_period_start():
    from datetime import UTC, datetime

    from shared.events import LeadTimeQuoted, NewsReported, PriceObserved, StockReported, TradeFlowReported

    at = datetime(2024, 3, 5, 6, 7, tzinfo=UTC)
    assert (
        PriceObserved(material="gallium", source="s", observed_at=at, price=1.0, currency="USD", unit="kg").occurred_at
        == at
    )
    assert NewsReported(material="gallium", item_id="i", source="s", title="t", published_at=at).occurred_at == at
    assert LeadTimeQuoted(material="gallium", source="s", quoted_at=at, lead_time_days=30).occurred_at == at
    assert StockReported(material="gallium", source="s", reported_at=at, tonnes=1.0).occurred_at == at
    flow = {"material": "gallium", "source": "s", "reporter": "EU27", "partner": "CN", "hs_code": "811292"}
    assert TradeFlowReported(**flow, period="2023-05").occurred_at == datetime(2023, 5, 1, tzinfo=UTC)
    assert TradeFlowReported(**flow, period="2023").occurred_at == datetime(2023, 1, 1, tzinfo=UTC)
