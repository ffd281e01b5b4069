import base64
import json
from datetime import UTC, datetime

import pytest

from shared.events import (
    BreachRaised,
    BreachStatus,
    Classification,
    DeadLettered,
    EnvelopeError,
    PriceObserved,
    Severity,
    decode,
    encode,
    to_cloudevent,
)


def price(**overrides):
    fields = dict(material="gallium", source="test", observed_at=datetime(2023, 7, 3, tzinfo=UTC), price=310.0,
                  currency="USD", unit="kg")
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


def test_unknown_fields_are_refused_so_a_typo_cannot_pass_silently():
    envelope = to_cloudevent(price(), source="s")
    envelope["data"]["prcie"] = 1
    with pytest.raises(EnvelopeError, match="prcie"):
        decode(json.dumps(envelope).encode())


def test_dead_letter_keeps_the_original_bytes_exactly():
    raw = b"\x00\x01 broken <xml> \xff"
    letter = DeadLettered.of(raw, "not JSON", source="feed-a", stage="ingest")
    _, decoded = decode(encode(letter, source="s"))
    assert decoded.original() == raw
    assert base64.b64decode(decoded.original_b64) == raw


def test_most_restricted_classification_wins():
    levels = [Classification.PUBLIC, Classification.GOVERNMENT, Classification.RESTRICTED]
    assert Classification.most_restricted(levels) is Classification.GOVERNMENT
    assert Classification.most_restricted([]) is Classification.PUBLIC


def test_breach_round_trips_with_its_evidence():
    at = datetime(2023, 7, 4, tzinfo=UTC)
    breach = BreachRaised(
        fingerprint="f1", material="gallium", rule="price-change-1d", indicator="price_change_1d",
        severity=Severity.CRITICAL, status=BreachStatus.FIRING, value=0.42, threshold=0.4, starts_at=at,
        observed_at=at, summary="Gallium up 42%",
        evidence=[{"id": "e1", "source": "lme", "kind": "price", "time": at, "value": 310.0}],
    )
    _, decoded = decode(encode(breach, source="s"))
    assert decoded.evidence[0].id == "e1"
    assert decoded.severity is Severity.CRITICAL
