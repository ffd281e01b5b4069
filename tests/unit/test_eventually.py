"""The one wait helper: it returns the first truthy value, and fails naming what never happened."""

import asyncio
import itertools

import pytest

from tests.eventually import eventually, eventually_blocking


def test_the_first_truthy_value_is_returned_after_the_tries_before_it():
    tries = itertools.count()
    reloads = []
    assert (
        eventually_blocking(
            lambda: next(tries) >= 3 and "ready", within=5, every=0.001, between=lambda: reloads.append(1)
        )
        == "ready"
    )
    assert len(reloads) == 3  # once before each new try


def test_a_condition_that_never_holds_fails_naming_it():
    with pytest.raises(AssertionError, match="timed out waiting for the marker"):
        eventually_blocking(lambda: None, within=0.01, what="the marker", every=0.001)


def test_the_async_form_waits_without_blocking_the_loop():
    async def scenario():
        done = []
        asyncio.get_running_loop().call_later(0.01, done.append, "marker")
        return await eventually(lambda: done and done[0], within=5, every=0.001)

    assert asyncio.run(scenario()) == "marker"
    with pytest.raises(AssertionError, match="timed out waiting for nothing"):
        asyncio.run(eventually(lambda: 0, within=0.01, what="nothing", every=0.001))


def test_an_async_predicate_is_awaited_on_each_try():
    tries = itertools.count()

    async def check():
        await asyncio.sleep(0)
        return next(tries) >= 2 and "served"

    assert asyncio.run(eventually(check, within=5, every=0.001)) == "served"
    assert next(tries) == 3  # three tries, the last one true

    async def never():
        return False

    with pytest.raises(AssertionError, match="timed out waiting for the answer"):
        asyncio.run(eventually(never, within=0.01, what="the answer", every=0.001))
