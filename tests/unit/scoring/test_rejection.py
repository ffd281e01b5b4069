"""A rejection is typed: metrics read its kind, logs and dead letters its text, which reads as it always did."""

import pytest

from services.scoring.agents import outcome_label
from services.scoring.engine import Rejection, apply_event
from tests.unit.scoring.test_engine import CONFIG, price


def test_a_rejection_reads_as_its_kind_then_its_detail():
    assert str(Rejection("duplicate", "event id already applied")) == "duplicate: event id already applied"


@pytest.mark.parametrize("kind", ["duplicate", "late", "irrelevant"])
def test_the_metrics_label_of_a_rejection_is_its_kind(kind):
    assert outcome_label(Rejection(kind, "why")) == kind


def test_the_metrics_label_of_an_applied_input_is_ok_and_of_a_repeated_one_duplicate():
    first = apply_event(None, price(100.0, 0), event_id="a", config=CONFIG)
    again = apply_event(first.state, price(100.0, 0), event_id="a", config=CONFIG)
    assert [outcome_label(first.rejected), outcome_label(again.rejected)] == ["ok", "duplicate"]
