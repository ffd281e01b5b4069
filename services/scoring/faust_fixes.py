"""Every place where scoring reaches into faust's (and its aiokafka consumer's) private parts, in one module.

faust-streaming offers no setting or hook for any of these; each works around faust 0.15's behaviour and names
the internals it relies on. tests/unit/scoring/test_faust_fixes.py guards each one: a guard fails when the faust
code it relies on changes, and the fix is then re-read against the new faust before the guard is updated. The
pin in pyproject.toml (`<0.16`) keeps an upgrade deliberate. `intake.py` holds the one larger piece, a copy of
faust's drain loop; `install_intake` below is its only hook into faust.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import faust
import faust.streams as faust_streams
from faust.tables import TableManager
from faust.types import EventT
from prometheus_client import Counter

log = logging.getLogger(__name__)

RECOVERY_RESTARTS = Counter(
    "mews_scoring_recovery_restarts_total",
    "Table restores restarted because their changelog records were fetched and dropped",
)


class DeclaredTableManager(TableManager):
    """faust 0.15's table manager without the second it sleeps before it starts the tables.

    faust 0.15 waits 1 s in `TableManager.on_start` so that tables declared late can still join, and the
    consumer subscribes only once the tables are registered: every start and restart of a worker waited it out
    before joining its group. The scoring app declares its one table in `create_app`, before the app starts
    (a table added later still raises, as in faust), so there is nothing to wait for.
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def _adjust_new_consumers(app: faust.App, adjust: Callable[[Any], None]) -> None:
    """Call `adjust` on the consumer faust 0.15 creates for `app` (faust's `App._new_consumer`, its only factory)."""
    new_consumer = app._new_consumer

    def adjusted_consumer() -> Any:
        consumer = new_consumer()
        adjust(consumer)
        return consumer

    app._new_consumer = adjusted_consumer  # type: ignore[method-assign]


def install_intake(app: faust.App, drain_into: Callable[[Any], Callable[[Any], Any]]) -> None:
    """Make faust 0.15's Fetcher drain the consumer with `drain_into(consumer)` instead of `Consumer._drain_messages`.

    The Fetcher calls `consumer._drain_messages(fetcher)` and nothing else (see the guard test); call before the
    app starts.
    """

    def drain_through_intake(consumer: Any) -> None:
        consumer._drain_messages = drain_into(consumer)

    _adjust_new_consumers(app, drain_through_intake)


def committed_offset(app: faust.App, tp: Any) -> int | None:
    """The group's committed offset of `tp` as faust 0.15's consumer last read or committed it (no public getter)."""
    return app.consumer._committed_offset.get(tp)


@contextlib.contextmanager
def processing(event: EventT) -> Iterator[None]:
    """Act as if faust 0.15 were processing `event`: a table write goes to its partition, in the store and changelog.

    Table writes outside the stream have no current event, and faust takes the partition of a key (for the
    changelog and, with rocksdb://, for the store) from the current event, a context variable of faust.streams.
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


async def seek_to_committed(consumer: Any) -> dict[Any, int | None]:
    """aiokafka's `AIOKafkaConsumer.seek_to_committed` for every assigned partition, with one offset request.

    aiokafka (0.14) asks the group coordinator for one partition's committed offset at a time, and faust 0.15 seeks
    at every assignment: a worker's 30 input and 6 changelog partitions cost 36 round trips one after another,
    twice, before its first input was fetched. The answer per partition is aiokafka's: the committed offset (None
    when there is none), and a seek there when it is past 0.
    """
    partitions = consumer._subscription.assigned_partitions()
    found = await consumer._coordinator.fetch_committed_offsets(partitions)
    committed: dict[Any, int | None] = {}
    for tp in partitions:
        offset = found[tp].offset if tp in found else None
        committed[tp] = None if offset == -1 else offset
        if offset and offset > 0:
            consumer._fetcher.seek_to(tp, offset)
    return committed


def seek_committed_in_one_request(app: faust.App) -> None:
    """Make faust 0.15's consumer thread seek to committed offsets with `seek_to_committed` above."""

    def seeking_at_once(consumer: Any) -> None:
        thread = consumer._thread  # faust's AIOKafkaConsumerThread, which owns the aiokafka consumer

        async def seek() -> Any:
            return await thread.call_thread(seek_to_committed, thread._ensure_consumer())

        thread.seek_to_committed = seek

    _adjust_new_consumers(app, seeking_at_once)


def shorten_fetch_wait(app: faust.App, seconds: float) -> None:
    """Fetch requests wait at most `seconds` for new records, instead of the 1.5 s faust 0.15 hard-codes.

    aiokafka sends one fetch per broker and leaves out the partitions whose records are still buffered; while
    that fetch waits (for the partitions that happen to be quiet: other input topics, the changelog), the
    partitions just scored are not fetched again. Every price then waits out the long poll, at 100 prices/s
    for most of a second. faust offers no setting for it, so the running fetcher is told at each assignment.
    """
    wait_ms = max(1, round(seconds * 1000))

    async def set_fetch_wait(sender: Any, *_: Any, **__: Any) -> None:  # sender: the faust.App
        consumer = getattr(sender.consumer._thread, "_consumer", None)  # the aiokafka consumer, once started
        fetcher = getattr(consumer, "_fetcher", None)
        if fetcher is not None:
            fetcher._fetch_max_wait_ms = wait_ms
            log.debug("fetch wait set", extra={"fetch_max_wait_ms": wait_ms})
        else:
            log.warning("fetch wait left at faust's default: no running fetcher found")

    app.on_partitions_assigned.connect(set_fetch_wait)  # type: ignore[arg-type]  # mypy cannot match mode's handler union


def hold_inputs_until_seeked(app: faust.App) -> None:
    """Fetch no input between the end of table recovery and faust 0.15's seek to the committed offsets.

    faust 0.15 resumes its flow control while it restores the table, with the input partitions paused. When the
    restore is done (`Recovery.on_recovery_completed`) it resumes the input partitions, awaits a seek to the
    committed offsets and only then calls `flow_control.resume()`, which empties every agent queue. An input
    fetched in between is dropped from the queue while the fetcher has moved past it, and the consumer's commit
    (`Consumer._new_offset` tolerates one missing offset ahead of the acked ones) passes over it: that input is
    never scored (faust-streaming issue #596; with two or more dropped the commit stalls until the next
    rebalance). `on_rebalance_complete` is sent just before that sequence and `resume_flow()` ends it, so
    stopping the consumer's flow here makes the seek the only place input fetching restarts from. Like faust's
    own stop at a revocation, it drops the rest of a batch being handed over (here, standby changelog records,
    which faust's queue clearing at the same point drops too).
    """

    async def stop_fetching(sender: Any, *_: Any, **__: Any) -> None:  # sender: the faust.App
        sender.consumer.stop_flow()
        log.info("input fetching held until the seek to committed offsets")

    app.on_rebalance_complete.connect(stop_fetching)  # type: ignore[arg-type]  # mypy cannot match mode's handler union


def stranded(
    progress: Mapping[Any, tuple[int, int, int | None]], since: Mapping[Any, tuple[int, float]], now: float, hold: float
) -> list[Any]:
    """Changelog partitions whose restore cannot finish: fetched past their last record, nothing applied for `hold`.

    `progress` maps a partition to (offset applied, last offset to restore, consumer position); `since` maps it to
    the applied offset seen at the earlier checks and the time it was first seen.
    """
    return sorted(
        (
            tp
            for tp, (applied, last, position) in progress.items()
            if applied < last
            and position is not None
            and position > last
            and tp in since
            and since[tp][0] == applied
            and now - since[tp][1] >= hold
        ),
        key=str,
    )


def restart_stranded_recovery(app: faust.App, interval: float) -> None:
    """Restart a faust 0.15 table restore whose remaining changelog records were fetched and then thrown away.

    If faust's fetcher returns changelog records while the consumer flow is stopped (a fetch begun before a
    rebalance, answered after the restore has sought the changelog back), `Consumer.getmany` drops them and
    seeks only to committed offsets, which changelog partitions do not have: the restore then waits forever
    for records already read past, and the worker never scores again. Setting the recovery's start signal is
    how faust itself restarts a restore after another rebalance; the restart seeks the changelog again. A
    restart needs a few consumer round trips (each up to a fetch timeout of 1 s) before it seeks, hence a hold of
    three checks and never under 10 s.
    """
    hold = max(3 * interval, 10.0)
    since: dict[Any, tuple[int, float]] = {}

    @app.timer(interval, name="restart-stranded-recovery")
    async def check_restore() -> None:
        recovery = app.tables.recovery
        if not recovery.in_recovery:
            since.clear()
            return
        progress: dict[Any, tuple[int, int, int | None]] = {}
        try:
            for tp in list(recovery.active_tps):
                applied, last = recovery.active_offsets.get(tp), recovery.active_highwaters.get(tp)
                if applied is not None and last is not None:
                    progress[tp] = (applied, last, await app.consumer.position(tp))
        except Exception as exc:  # a rebalance in between: look again at the next check
            log.info("restore check skipped", extra={"reason": f"{type(exc).__name__}: {exc}"})
            return
        now = time.monotonic()
        stuck = stranded(progress, since, now, hold)
        if stuck:
            RECOVERY_RESTARTS.inc()
            log.warning(
                "table restore stranded: restarting it",
                extra={
                    "partitions": [f"{tp.topic}:{tp.partition}" for tp in stuck],
                    "applied": [progress[tp][0] for tp in stuck],
                    "last": [progress[tp][1] for tp in stuck],
                },
            )
            recovery.signal_recovery_start.set()
            since.clear()
            return
        for tp, (applied, _, _) in progress.items():
            if since.get(tp, (None,))[0] != applied:
                since[tp] = (applied, now)
