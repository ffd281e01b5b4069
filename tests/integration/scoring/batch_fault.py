"""Imported into a scoring worker by a test: a batch holding an input marked "poison" fails outside any one input's
scoring, after its runs of prices were applied to the states in memory (a fault in the batch's own machinery)."""

from __future__ import annotations

from typing import Any

from services.scoring import agents

MARK = b"poison"
_stretches = agents.stretches


def failing_stretches(messages: list[Any]) -> list[tuple[Any, Any]]:
    if any(MARK in (m.value or b"") for m in messages):
        raise RuntimeError("a fault put in by the test")
    return _stretches(messages)


agents.stretches = failing_stretches
