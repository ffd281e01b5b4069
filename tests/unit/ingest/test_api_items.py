"""Posted items validated one by one: each valid item gets its model, each invalid one the reason of its own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.ingest.api import ITEM_MODELS, validate_items
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
