import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.kafka import event_id_for


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=120))
def test_an_event_id_is_the_name_based_uuid5_of_its_dedup_key(dedup_key):
    # The ids consumers de-duplicate on must stay what uuid.uuid5 gives, whatever the key holds.
    assert event_id_for(dedup_key) == str(uuid.uuid5(uuid.NAMESPACE_URL, f"mews:{dedup_key}"))
