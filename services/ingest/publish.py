"""The one place ingest writes to Kafka: events to their topics, unusable input to the dead-letter topic.

Every record's decision (published, duplicate, rejected, skipped) is returned with its reason, counted and
logged, so an operator can account for each item a source delivered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.ingest import metrics
from services.ingest.observation import Accepted, Malformed, Outcome, Skipped
from services.ingest.seen import SeenStore
from shared import topics
from shared.events import SIGNALS, DeadLettered
from shared.kafka import EventProducer, Outgoing, Submission, event_id_for

log = logging.getLogger(__name__)
# Keys read from the seen-store on the event loop itself (about 1.5 ms per 1,000): a chunk of the API or a feed
# (1,000 items) is checked without a thread hop, which a loaded machine makes cost more than the read.
INLINE_SEEN_CHECK = 1000  # keys


@dataclass(frozen=True)
class Decision:
    """What happened to one record: published, duplicate, rejected or skipped, and why."""

    status: str
    reason: str = ""
    code: str = ""
    events: int = 0


@dataclass(slots=True)  # not frozen: a frozen dataclass is built at three times the cost, paid per record
class Item:
    """One record to publish: its outcome from normalisation (or the adapter) and its original bytes."""

    kind: str
    source: str
    outcome: Outcome | Malformed
    raw: bytes


class NotPublished(Exception):  # noqa: N818 (a outcome callers handle, not a programming error)
    """Kafka did not acknowledge everything in time; `decisions` says, per item, what became of it."""

    def __init__(self, decisions: list[Decision]) -> None:
        failed = sum(d.status == "failed" for d in decisions)
        super().__init__(f"{failed} of {len(decisions)} items not acknowledged by Kafka in time")
        self.decisions = decisions


NOT_ACKNOWLEDGED = Decision("failed", "Kafka did not acknowledge it in time; not published", "not_acknowledged")
DUPLICATE = Decision("duplicate", "already published", "duplicate")


@functools.lru_cache(maxsize=64)  # decisions are values: one per number of events, not one per item
def _published(events: int) -> Decision:
    return Decision("published", events=events)


def _none_published(items: Sequence[Item]) -> list[Decision]:
    return [NOT_ACKNOWLEDGED if isinstance(it.outcome, Accepted) else _outcome_decision(it) for it in items]


def _outcome_decision(item: Item) -> Decision:
    """The decision on an item that is not to be published."""
    outcome = item.outcome
    assert not isinstance(outcome, Accepted)
    if isinstance(outcome, Skipped):
        return Decision("skipped", outcome.detail, outcome.code)
    return Decision("rejected", outcome.detail, outcome.code)


@dataclass
class _Plan:
    """What a batch comes to once checked against the seen keys: decisions, events to send, dead letters."""

    decisions: list[Decision]
    sends: list[Outgoing]
    sent: list[tuple[int, int]]  # (item index, its number of events), in the order of `sends`
    dead: list[tuple[Item, str, str]]


class Publisher:
    """Publishes normalised items once each, dead-letters unusable ones; shared by the poller and the API.

    A batch is bounded by a deadline: what Kafka has not acknowledged by then is abandoned (never written
    later) and not recorded as seen, so sending it again publishes it once. Batches are handed to Kafka
    one at a time, in the order `publish` was called, and their acknowledgements awaited concurrently, so
    a caller can prepare its next batch while the last one travels; an item a batch in flight holds is
    waited for, so two batches never both publish the same observation.
    """

    def __init__(self, producer: EventProducer, seen: SeenStore, *, within: float = 10.0) -> None:
        self.producer = producer
        self.seen = seen
        self.within = within
        self._newest: dict[tuple[str, str], float] = {}
        self._in_flight: dict[str, asyncio.Future[None]] = {}
        self._submitting = asyncio.Lock()  # FIFO: batches reach Kafka in call order

    async def publish(
        self, items: Sequence[Item], *, dead_letter: bool = True, within: float | None = None
    ) -> list[Decision]:
        """Publish a batch within `within` seconds (default: the publisher's); one decision per item, in order.

        Rejected and malformed items go to the dead-letter topic when `dead_letter` is set (feeds); the API
        answers its caller with the reasons instead. Raises NotPublished if Kafka did not acknowledge
        everything in time: the acknowledged items are then recorded as seen, the others are not.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.within if within is None else within)
        keys = [it.outcome.dedup_keys() if isinstance(it.outcome, Accepted) else () for it in items]
        try:
            async with asyncio.timeout_at(deadline):
                await self._submitting.acquire()
        except TimeoutError:
            raise NotPublished(_none_published(items)) from None
        claimed: set[str] | None = None
        try:
            # Claimed under the lock, so a batch waits only for batches already past it: no cycle of waits.
            claimed = await self._claim({k for item_keys in keys for k in item_keys}, deadline)
            if claimed is None:  # a batch in flight holding some of these keys did not finish in time
                raise NotPublished(_none_published(items))
            plan = await self._plan(items, keys, claimed, dead_letter)
            submission = await self.producer.submit(plan.sends, within=deadline - loop.time()) if plan.sends else None
        except BaseException:
            if claimed is not None:
                self._release(claimed)
            raise
        finally:
            self._submitting.release()
        try:
            decisions = await self._settle(plan, submission, keys, deadline)
        finally:
            self._release(claimed)
        self._count(items, decisions)
        if any(d.status == "failed" for d in decisions):
            raise NotPublished(decisions)
        return decisions

    async def _plan(
        self, items: Sequence[Item], keys: list[tuple[str, ...]], claimed: set[str], dead_letter: bool
    ) -> _Plan:
        # A read of a chunk's keys takes a millisecond or two and never waits in WAL mode: inline, so the batch
        # is submitted at once instead of after the caller's next chunk; larger reads go to a thread.
        if len(claimed) <= INLINE_SEEN_CHECK:
            already = self.seen.seen(claimed)
        else:
            already = await asyncio.to_thread(self.seen.seen, claimed)
        plan = _Plan([], [], [], [])
        batch_keys: set[str] = set()
        for index, (item, item_keys) in enumerate(zip(items, keys, strict=True)):
            outcome = item.outcome
            if isinstance(outcome, Accepted):
                if not (already.isdisjoint(item_keys) and batch_keys.isdisjoint(item_keys)):
                    plan.decisions.append(DUPLICATE)
                    continue
                batch_keys.update(item_keys)
                topic = SIGNALS[item.kind].topic
                # The keys are the events' own unless the outcome names other identities: computed once.
                event_keys = item_keys if not outcome.identities else tuple(e.dedup_key() for e in outcome.events)
                for event, event_key in zip(outcome.events, event_keys, strict=True):
                    plan.sends.append((topic, event, None, event_id_for(event_key)))
                plan.sent.append((index, len(outcome.events)))
                plan.decisions.append(_published(len(outcome.events)))
            else:
                plan.decisions.append(_outcome_decision(item))
                if dead_letter and not isinstance(outcome, Skipped):
                    plan.dead.append((item, outcome.code, outcome.detail))
        return plan

    async def _settle(
        self, plan: _Plan, submission: Submission | None, keys: list[tuple[str, ...]], deadline: float
    ) -> list[Decision]:
        """Await the acknowledgements, record what Kafka took as seen, then write the dead letters."""
        decisions = plan.decisions
        if submission is not None:
            acknowledged = await submission.acknowledged()
            recorded: list[str] = []
            if all(acknowledged):  # the usual answer: every item's keys at once, no walk event by event
                recorded = [k for index, _ in plan.sent for k in keys[index]]
            else:
                acks = iter(acknowledged)
                for index, events in plan.sent:
                    if all([next(acks) for _ in range(events)]):
                        recorded.extend(keys[index])
                    else:
                        decisions[index] = NOT_ACKNOWLEDGED
            if recorded:
                self.seen.record(recorded)  # in memory at once; the store writes its file in its own thread
            if any(d is NOT_ACKNOWLEDGED for d in decisions):
                return decisions  # Kafka is not taking writes: the dead letters wait for the retry too
        if plan.dead:
            # One batched write: a feed of thousands of bad rows must not cost a broker round trip per row.
            namespace = self.producer.namespace
            letters: list[Outgoing] = [
                (
                    topics.DEADLETTER,
                    DeadLettered.of(
                        item.raw,
                        f"{code}: {detail}",
                        source=item.source,
                        stage="ingest",
                        intended_topic=SIGNALS[item.kind].topic.qualified(namespace),
                    ),
                    item.source,
                    None,
                )
                for item, code, detail in plan.dead
            ]
            remaining = deadline - asyncio.get_running_loop().time()
            if not all(await self.producer.send_acknowledged(letters, within=remaining)):
                return [NOT_ACKNOWLEDGED if d.status == "rejected" else d for d in decisions]
            for item, code, detail in plan.dead:
                log.warning(
                    "dead-lettered",
                    extra={"source": item.source, "kind": item.kind, "reason": code, "detail": detail[:300]},
                )
        return decisions

    async def _claim(self, keys: set[str], deadline: float) -> set[str] | None:
        """Mark `keys` as being published by this batch, once no concurrent batch holds any of them."""
        loop = asyncio.get_running_loop()
        while busy := {self._in_flight[k] for k in keys if k in self._in_flight}:
            _, pending = await asyncio.wait(busy, timeout=max(0.0, deadline - loop.time()))
            if pending:
                return None
        mine: asyncio.Future[None] = loop.create_future()
        for k in keys:
            self._in_flight[k] = mine
        return keys

    def _release(self, keys: set[str]) -> None:
        futures = {self._in_flight.pop(k) for k in keys}
        for future in futures:
            future.set_result(None)

    def _count(self, items: Sequence[Item], decisions: list[Decision]) -> None:
        """Metrics and logs per batch, not per item: a batch of 10,000 must not pay 10,000 label look-ups."""
        counts: Counter[tuple[str, str, str, str]] = Counter()
        newest: dict[tuple[str, str], datetime] = {}
        for item, decision in zip(items, decisions, strict=True):
            status = decision.status
            counts[(status, item.source, item.kind, decision.code)] += decision.events or 1
            if status == "published" and isinstance(item.outcome, Accepted):
                key = (item.source, item.kind)
                for event in item.outcome.events:
                    when = event.occurred_at
                    best = newest.get(key)
                    if best is None or when > best:
                        newest[key] = when
            elif status == "skipped":
                log.info("item skipped", extra={"source": item.source, "kind": item.kind, "reason": decision.reason})
        for (status, source, kind, code), n in counts.items():
            if status == "published":
                metrics.PUBLISHED.labels(source, kind).inc(n)
            elif status == "duplicate":
                metrics.DUPLICATES.labels(source, kind).inc(n)
            elif status == "skipped":
                metrics.SKIPPED.labels(source, kind, code).inc(n)
            elif status == "rejected":
                metrics.REJECTED.labels(source, kind, code).inc(n)
            elif status == "failed":
                metrics.NOT_ACKNOWLEDGED.labels(source, kind).inc(n)
        for (source, kind), when in newest.items():
            t = when.timestamp()  # once per source and batch, not per event
            if t > self._newest.get((source, kind), 0.0):
                self._newest[(source, kind)] = t
                metrics.NEWEST_ITEM.labels(source, kind).set(t)

    async def dead_letter_document(self, raw: bytes, kind: str, source: str, code: str, detail: str) -> None:
        """Quarantine a whole fetched document that could not be read at all (unsafe XML, oversized)."""
        metrics.REJECTED.labels(source, kind, code).inc()
        await self.producer.dead_letter(
            raw,
            f"{code}: {detail}",
            source=source,
            stage="ingest",
            intended_topic=SIGNALS[kind].topic.qualified(self.producer.namespace),
        )
