"""Input batches straight from the consumer faust owns, without faust's per-message delivery.

faust hands every fetched record to `Conductor.on_message` inside `Service.wait_first` (two asyncio tasks per
record), which decodes it into a channel queue, from which a Stream takes it with its own per-event sensors,
context variables and task bookkeeping. That per-record machinery, not the scoring, was most of a worker's CPU.
`BatchIntake` replaces the consumer's drain loop (`Consumer._drain_messages`, run by faust's Fetcher) with a copy
that keeps every piece of faust's bookkeeping (read offsets, gaps, commit-every, flow suspension, the generation
of each record) and hands the records of the input topics over as lists, at most `batch_max` each, through a
queue that faust's flow control clears at a rebalance like its own channel queues. Records of every other topic
(the table's changelog while it recovers) still go through faust's callback, one by one, as before.

Everything else stays faust's: the group, the assignment, the table and its recovery, seeks and commits. The
agent acks the inputs (`BatchIntake.ack`, faust's `Consumer.ack` for many at once) once the states that contain
them are persisted, and faust commits acked offsets only. This depends on faust 0.15.3's drain loop, fetch and
ack; tests/unit/scoring/test_intake_guard.py pins them. Its one hook into faust, `faust_fixes.install_intake`, is
guarded with the other workarounds in test_faust_fixes.py.

`drain_into`, `_fetch` and `ack` follow faust-streaming's `Consumer._drain_messages`, `Consumer.getmany` and
`Consumer.ack` (Copyright (c) 2017-2020, Robinhood Markets, Inc., and the faust-streaming contributors; BSD
3-Clause licence, as shipped with the faust-streaming package).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING, Consumer
from faust.types.tuples import ack_lock
from mode.utils.futures import notify
from prometheus_client import Counter

from services.scoring.faust_fixes import install_intake

log = logging.getLogger(__name__)

DROPPED = Counter(
    "mews_scoring_input_batches_dropped_total",
    "Input batches fetched before a rebalance and dropped unscored (re-read after the seek)",
)

QUEUED_BATCHES = 4  # batches fetched ahead of the agent; beyond that the drain (and so the fetcher) waits


class BatchIntake:
    """The input topics' records of one app, in fetch order, as lists of faust `Message`s."""

    def __init__(self, app: faust.App, topics: Collection[str], batch_max: int) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.batch_max = batch_max
        self._queue: Any = None  # created with the consumer, inside the running app

    def install(self) -> None:
        """Make faust's consumer drain through this intake; call before the app starts."""
        install_intake(self.app, self.drain_into)

    @property
    def queue(self) -> Any:
        if self._queue is None:
            # A flow-control queue: faust clears it when it suspends flow at a revocation and when it resumes after
            # the seek to committed offsets, as it does its channel queues; records still in it are re-read.
            self._queue = self.app.FlowControlQueue(maxsize=QUEUED_BATCHES, clear_on_resume=True)
        return self._queue

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Every batch handed over, in order; batches fetched before a rebalance are left out."""
        while True:
            batch = await self.queue.get()
            if self.current(batch):
                yield batch
            else:
                DROPPED.inc()
                log.info("input batch of an earlier assignment dropped", extra={"inputs": len(batch)})

    def current(self, batch: list[Any]) -> bool:
        """Whether a batch may be scored: flow is on and it was fetched in this group generation (as faust's Stream
        decides per event). One fetch makes a batch, so its records share a generation."""
        return self.app.flow_control.is_active() and batch[0].generation_id == self.app.consumer_generation_id

    def track(self, batch: list[Any]) -> None:
        """Count the batch's inputs as being processed: faust's rebalance and stop wait until they are acked."""
        add = self.app.consumer._unacked_messages.add
        for message in batch:
            message.tracked = True
            add(message)

    def untrack(self, batch: list[Any]) -> None:
        """Stop counting these inputs as being processed, unacked: faust's rebalance and stop no longer wait for them,
        and their offsets stay uncommitted, so they are read again."""
        discard = self.app.consumer._unacked_messages.discard
        for message in batch:
            message.tracked = False
            discard(message)

    def ack(self, inputs: list[Any]) -> None:
        """faust 0.15.3's `Consumer.ack` of each input, at once: the same bookkeeping, looked up once per partition.

        Acked offsets become committable; each input leaves the set of those faust waits for. An input acked before,
        or below the committed offset, is only marked acked, as faust does.
        """
        consumer = self.app.consumer
        acks_enabled_for, unacked = self.app.topics.acks_enabled_for, consumer._unacked_messages
        by_tp: dict[Any, list[Any]] = {}
        with ack_lock:
            for message in inputs:
                if not message.acked:
                    message.acked = True
                    by_tp.setdefault(message.tp, []).append(message)
            done: list[Any] = []
            for tp, messages in by_tp.items():
                if not acks_enabled_for(tp.topic):
                    continue
                committed = consumer._committed_offset[tp]
                index, acked = consumer._acked_index[tp], consumer._acked[tp]
                for message in messages:
                    offset = message.offset
                    if (committed is None or offset >= committed) and offset not in index:
                        index.add(offset)
                        acked.append(offset)
                        done.append(message)
            unacked.difference_update(done)
            consumer._n_acked += len(done)
            if by_tp:
                notify(consumer._waiting_for_ack)

    async def _hand_over(self, consumer: Consumer, batch: list[Any]) -> None:
        async def put() -> None:
            # What Conductor.on_message waits for before it delivers: flow control and a producer buffer that ebbs.
            await self.app.flow_control.acquire()
            await self.app.producer.buffer.wait_until_ebb()
            await self.queue.put(batch)

        await consumer.wait_first(put(), consumer.suspend_flow.wait())

    async def _fetch(self, consumer: Consumer, wait: float) -> Iterator[tuple[Any, Any]]:
        """faust 0.15.3's `Consumer.getmany`: one fetch's records as faust `Message`s, with its checks per record.

        Returned as a plain iterator rather than an async generator, and with the partition's highwater read once
        per partition rather than once per record: those were most of what a fetched input cost before scoring.
        The order is the fetch's, partition by partition, not faust's round robin over topics: one agent scores
        every input partition, in batches, and only the order within a partition matters to it.
        """
        records, active = await consumer._wait_next_records(wait)
        generation = self.app.consumer_generation_id
        if records is None or consumer.should_stop:
            return iter(())
        if not consumer.flow_active:
            # Records fetched while the flow is stopped are dropped, and the consumer seeks back to the committed
            # offsets (services/scoring/faust_fixes.py relies on this, as on faust's own getmany).
            try:
                await consumer.perform_seek()
            except Exception as exc:
                log.warning("seek to committed offsets after a fetch without flow failed", extra={"error": str(exc)})
            return iter(())
        return self._messages(consumer, records, active, generation)

    def _messages(self, consumer: Consumer, records: Any, active: Any, generation: int) -> Iterator[tuple[Any, Any]]:
        app = self.app
        to_message, buffered, end_offsets = consumer._to_message, consumer._buffered_partitions, app.monitor
        for tp, fetched in records.items():
            tracked = False
            for record in fetched:
                # As faust checks before each record: the loop reading these awaits between some of them.
                if not consumer.flow_active or app.consumer_generation_id != generation:
                    return
                if active is None or tp in active or tp in buffered:
                    if not tracked:
                        end_offsets.track_tp_end_offset(tp, consumer.highwater(tp))
                        tracked = True
                    yield tp, to_message(tp, record)

    def drain_into(self, consumer: Consumer) -> Callable[[Any], Any]:
        """faust 0.15.3's `Consumer._drain_messages` for this consumer, with input records handed over in batches."""
        topics, batch_max = self.topics, self.batch_max

        async def drain_messages(fetcher: Any) -> None:
            callback = consumer.callback
            consumer_should_stop = consumer._stopped.is_set
            fetcher_should_stop = fetcher._stopped.is_set
            read_offsets = consumer._read_offset
            set_flag, unset_flag = consumer.diag.set_flag, consumer.diag.unset_flag
            commit_every = consumer._commit_every
            acks_enabled_for = self.app.topics.acks_enabled_for
            try:
                while not (consumer_should_stop() or fetcher_should_stop()):
                    set_flag(CONSUMER_FETCHING)
                    await consumer.sleep(0)
                    if consumer.should_stop:
                        continue
                    batch: list[Any] = []
                    for tp, message in await self._fetch(consumer, wait=1.0):
                        offset = message.offset
                        read = read_offsets[tp]
                        if read is not None and offset < read:
                            continue  # read already (faust drops it too)
                        if read and offset - read > 1 and acks_enabled_for(message.topic):
                            await consumer._add_gap(tp, read + 1, offset)
                        if commit_every is not None and consumer._n_acked >= commit_every:
                            consumer._n_acked = 0
                            await consumer.commit()
                        if tp.topic in topics:
                            batch.append(message)
                            read_offsets[tp] = offset
                            if len(batch) >= batch_max:
                                await self._hand_over(consumer, batch)
                                batch = []
                            continue
                        if batch:  # keep the order of the fetch
                            await self._hand_over(consumer, batch)
                            batch = []
                        await consumer.wait_first(callback(message), consumer.suspend_flow.wait())
                        read_offsets[tp] = offset
                    if batch:
                        await self._hand_over(consumer, batch)
                    unset_flag(CONSUMER_FETCHING)
            except consumer.consumer_stopped_errors:
                if self.app.should_stop:
                    log.info("broker stopped the consumer, shutting down")
                    return
                raise
            except asyncio.CancelledError:
                if self.app.should_stop:
                    return
                raise
            except Exception:
                log.exception("draining fetched records failed")
                raise
            finally:
                unset_flag(CONSUMER_FETCHING)

        return drain_messages
