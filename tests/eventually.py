"""The one way tests wait: poll a predicate until it holds, or fail naming what never happened.

`eventually` for async tests (its predicate may be async too), `eventually_blocking` for threads and
browsers; both return the predicate's first truthy value. To show that something did not happen, wait for
a later marker instead of sleeping.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _give_up_after(deadline: float, within: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise AssertionError(f"timed out waiting for {what} (within {within:g} s)")


async def eventually(
    predicate: Callable[[], T | Awaitable[T]], within: float = 20.0, what: str = "condition", every: float = 0.05
) -> T:
    """Poll `predicate` every `every` seconds without blocking the event loop, for at most `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        _give_up_after(deadline, within, what)
        await asyncio.sleep(every)


def eventually_blocking(
    predicate: Callable[[], T],
    within: float = 20.0,
    what: str = "condition",
    every: float = 0.05,
    between: Callable[[], object] | None = None,
) -> T:
    """`eventually` for code without an event loop; `between` runs before each new try (a page reload)."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        _give_up_after(deadline, within, what)
        if between is not None:
            between()
        time.sleep(every)
