"""The one place ingest writes to Kafka: events to their topics, unusable input to the dead-letter topic.

Every record's decision (published, duplicate, rejected, skipped) is returned with its reason, counted and
logged, so an operator can account for each item a source delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.ingest import metrics
from services.ingest.observation import KIND_TOPICS, Accepted, Malformed, Outcome, Skipped
from services.ingest.seen import SeenStore
from shared import topics
from shared.events import DeadLettered, Event
from shared.kafka import EventProducer, event_id_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """What happened to one record: published, duplicate, rejected or skipped, and why."""

    status: str
    reason: str = ""
    code: str = ""
    events: int = 0


@dataclass(frozen=True)
class Item:
    """One record to publish: its outcome from normalisation (or the adapter) and its original bytes."""

    kind: str
    source: str
    outcome: Outcome | Malformed
    raw: bytes


def _event_time(event: Event) -> datetime | None:
    return getattr(event, "observed_at", None) or getattr(event, "published_at", None) or \
        getattr(event, "quoted_at", None)


class Publisher:
    """Publishes normalised items once each, dead-letters unusable ones; shared by the poller and the API."""

    def __init__(self, producer: EventProducer, seen: SeenStore) -> None:
        self.producer = producer
        self.seen = seen
        self._newest: dict[str, float] = {}

    async def publish(self, items: Sequence[Item], *, dead_letter: bool = True) -> list[Decision]:
        """Publish a batch; return one decision per item, in order.

        Rejected and malformed items go to the dead-letter topic when `dead_letter` is set (feeds); the API
        answers its caller with the reasons instead. Raises if Kafka fails: nothing is then marked seen.
        """
        decisions: list[Decision | None] = [None] * len(items)
        batch_keys: set[str] = set()
        all_keys = [k for it in items if isinstance(it.outcome, Accepted) for k in it.outcome.dedup_keys()]
        already = self.seen.seen(all_keys)
        sends: list = []
        to_record: list[str] = []
        dead: list[tuple[Item, str, str]] = []
        for index, item in enumerate(items):
            outcome = item.outcome
            if isinstance(outcome, Accepted):
                keys = outcome.dedup_keys()
                if any(k in already or k in batch_keys for k in keys):
                    decisions[index] = Decision("duplicate", "already published", "duplicate")
                    metrics.DUPLICATES.labels(item.source, item.kind).inc()
                    continue
                batch_keys.update(keys)
                to_record.extend(keys)
                topic = KIND_TOPICS[item.kind]
                for event in outcome.events:
                    sends.append((topic, event, None, event_id_for(event.dedup_key())))  # type: ignore[attr-defined]
                decisions[index] = Decision("published", events=len(outcome.events))
            elif isinstance(outcome, Skipped):
                decisions[index] = Decision("skipped", outcome.detail, outcome.code)
                metrics.SKIPPED.labels(item.source, item.kind, outcome.code).inc()
                log.info("item skipped", extra={"source": item.source, "kind": item.kind, "reason": outcome.detail})
            else:
                decisions[index] = Decision("rejected", outcome.detail, outcome.code)
                metrics.REJECTED.labels(item.source, item.kind, outcome.code).inc()
                if dead_letter:
                    dead.append((item, outcome.code, outcome.detail))
        if sends:
            await self.producer.send_many(sends)
            self.seen.record(to_record)
        if dead:
            # One batched write: a feed of thousands of bad rows must not cost a broker round trip per row.
            await self.producer.send_many([
                (topics.DEADLETTER,
                 DeadLettered.of(item.raw, f"{code}: {detail}", source=item.source, stage="ingest",
                                 intended_topic=KIND_TOPICS[item.kind].qualified(self.producer.namespace)),
                 item.source, None)
                for item, code, detail in dead])
            for item, code, detail in dead:
                log.warning("dead-lettered", extra={"source": item.source, "kind": item.kind, "reason": code,
                                                    "detail": detail[:300]})
        for item, decision in zip(items, decisions, strict=True):
            if decision is not None and decision.status == "published":
                metrics.PUBLISHED.labels(item.source, item.kind).inc(decision.events)
                assert isinstance(item.outcome, Accepted)
                times = [t for t in map(_event_time, item.outcome.events) if t is not None]
                if times:
                    newest = max(self._newest.get(item.source, 0.0), max(times).timestamp())
                    self._newest[item.source] = newest
                    metrics.NEWEST_ITEM.labels(item.source).set(newest)
        return [d for d in decisions if d is not None]

    async def dead_letter_document(self, raw: bytes, kind: str, source: str, code: str, detail: str) -> None:
        """Quarantine a whole fetched document that could not be read at all (unsafe XML, oversized)."""
        metrics.REJECTED.labels(source, kind, code).inc()
        await self.producer.dead_letter(raw, f"{code}: {detail}", source=source, stage="ingest",
                                        intended_topic=KIND_TOPICS[kind].qualified(self.producer.namespace))
