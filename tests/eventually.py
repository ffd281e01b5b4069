"""The one way tests wait: poll a predicate until it holds, or fail naming what never happened.

`eventually` for async tests, `eventually_blocking` for threads and browsers; both return the predicate's first
truthy value. To show that something did not happen, wait for a later marker instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")


def _polls(predicate: Callable[[], T], within: float, what: str) -> Generator[None, None, T]:
    """Yield after each falsy value until the deadline, then fail; return the first truthy value."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (within {within:g} s)")
        yield


async def eventually(
    predicate: Callable[[], T], within: float = 20.0, what: str = "condition", every: float = 0.05
) -> T:
    """Poll `predicate` every `every` seconds without blocking the event loop, for at most `within` seconds."""
    polls = _polls(predicate, within, what)
    while True:
        try:
            next(polls)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(every)


def eventually_blocking(
    predicate: Callable[[], T],
    within: float = 20.0,
    what: str = "condition",
    every: float = 0.05,
    between: Callable[[], object] | None = None,
) -> T:
    """`eventually` for code without an event loop; `between` runs before each new try (a page reload)."""
    polls = _polls(predicate, within, what)
    while True:
        try:
            next(polls)
        except StopIteration as done:
            return done.value
        if between is not None:
            between()
        time.sleep(every)
