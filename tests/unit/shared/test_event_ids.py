import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.events import PriceObserved
from shared.kafka import event_id_for


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=120))
def test_an_event_id_is_the_name_based_uuid5_of_its_dedup_key(dedup_key):
    # The ids consumers de-duplicate on must stay what uuid.uuid5 gives, whatever the key holds.
    assert event_id_for(dedup_key) == str(uuid.uuid5(uuid.NAMESPACE_URL, f"mews:{dedup_key}"))


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_a_dedup_key_writes_its_time_as_isoformat_whatever_was_keyed_before(moment, offset_minutes):
    # Key times are cached for UTC: an equal instant in another offset, keyed after it, keeps its own spelling.
    utc = moment.replace(tzinfo=UTC)
    elsewhere = utc.astimezone(timezone(timedelta(minutes=offset_minutes)))

    def key(at):
        return PriceObserved(
            material="gallium", source="s", observed_at=at, price=1.0, currency="USD", unit="kg"
        ).dedup_key()

    assert key(utc) == f"s|gallium||{utc.isoformat()}"
    assert key(elsewhere) == f"s|gallium||{elsewhere.isoformat()}"
    assert key(utc) == f"s|gallium||{utc.isoformat()}"
