"""Posted items validated one by one: each valid item gets its model, each invalid one the reason of its own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.ingest.api import ITEM_MODELS, candidate_fields, validate_items
from services.ingest.observation import Rejected
from shared.events import describe_validation_error

GOOD = {"material": "gallium", "price": 350, "currency": "USD", "unit": "kg", "observed_at": "2023-01-02"}


def test_a_valid_chunk_gives_every_item_its_model():
    items = [dict(GOOD, price=350 + i) for i in range(5)]
    validated = validate_items("price", items)
    assert [v.price for v in validated] == [350, 351, 352, 353, 354]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad", [{**GOOD, "currency": "DOLLAR"}, {**GOOD, "colour": "red"}, "not an object", {"price": 1}]
)
def test_an_invalid_item_gets_the_reason_of_its_own_and_its_neighbours_their_models(bad):
    with pytest.raises(ValidationError) as alone:
        ITEM_MODELS["price"].model_validate(bad)
    validated = validate_items("price", [GOOD, bad, dict(GOOD, price=7)])
    assert validated[1] == Rejected("invalid_item", describe_validation_error(alone.value))
    assert validated[0].price == 350  # type: ignore[union-attr]
    assert validated[2].price == 7  # type: ignore[union-attr]


def test_the_reason_names_the_field_and_what_is_wrong_without_the_item_index():
    validated = validate_items("price", [GOOD, {**GOOD, "colour": "red"}])
    assert validated[1] == Rejected("invalid_item", "colour: Extra inputs are not permitted")


MINIMAL = {
    "price": GOOD,
    "news": {"title": "China bans gallium exports"},
    "trade": {"reporter": "NL", "partner": "CN", "hs_code": "811292", "period": "2023-04"},
    "leadtime": {"material": "gallium", "lead_time_days": 90, "quoted_at": "2023-01-02"},
    "stock": {"material": "gallium", "tonnes": 3, "reported_at": "2023-01-02"},
}


@pytest.mark.parametrize("kind", sorted(ITEM_MODELS))
def test_an_item_s_fields_are_what_it_gives_without_the_ones_it_leaves_out(kind):
    # Normalisation reads absent and null alike; an item's source and clearance travel beside its fields.
    model = ITEM_MODELS[kind]
    given = model.model_validate({**MINIMAL[kind], "source": "feed-x"})
    fields = candidate_fields(kind, given)
    assert None not in fields.values()
    assert "classification" not in fields
    assert "source" not in fields
    unset = {name for name in model.model_fields if name not in given.model_fields_set}
    defaults = {name for name in unset if model.model_fields[name].default is not None}
    renamed = {"text": "summary", "url": "link"} if kind == "news" else {}
    expected = {renamed.get(n, n) for n in given.model_fields_set | defaults} - {"classification", "source"}
    assert set(fields) == expected
