"""The read view: every material's latest snapshot, its recent ones, and every breach's latest state, as the API
shows them.

The view folds the compacted indicators topic and the breaches topic, all partitions, from the beginning and
without a consumer group, so every process shows every material whichever worker owns its partition.
`MaterialsView` is pure (no Kafka); `ViewFeed` is the consumer that feeds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter, Gauge

from shared import topics as declared
from shared.events import (
    BreachRaised,
    BreachStatus,
    Classification,
    EnvelopeError,
    Event,
    IndicatorSnapshot,
    decode,
)
from shared.metrics import child

log = logging.getLogger(__name__)

RISK_SCORE = Gauge("mews_scoring_risk_score", "Composite supply-risk score (0-100) of a material", ["material"])
RISK_COMPONENT = Gauge(
    "mews_scoring_risk_component", "One weighted component of the composite risk score", ["material", "component"]
)
BREACHES_FIRING = Gauge(
    "mews_scoring_breaches_firing", "Open breaches per material and severity", ["material", "severity"]
)
VIEW_EVENTS = Counter("mews_scoring_view_events_total", "Messages folded into the read view", ["topic", "outcome"])
# Snapshot indicator name -> the agreed gauge; gauges of indicators a snapshot lacks are left as they were.
INDICATOR_GAUGES: dict[str, Gauge] = {
    "price": Gauge("mews_scoring_price", "Latest price of a material in its series' unit", ["material"]),
    "price_volatility": Gauge("mews_scoring_price_volatility", "Annualised EWMA price volatility", ["material"]),
    "leadtime_days": Gauge("mews_scoring_leadtime_days", "Latest quoted lead time in days", ["material"]),
    "leadtime_ratio": Gauge("mews_scoring_leadtime_ratio", "Lead time over its baseline", ["material"]),
    "concentration_hhi": Gauge(
        "mews_scoring_concentration_hhi", "Herfindahl-Hirschman index of import origins", ["material"]
    ),
    "export_controls_active": Gauge("mews_scoring_export_controls_active", "Export controls in force", ["material"]),
    # The CRMA Art. 5(1)(b) benchmark's measure. Stock cover has no gauge: stock levels are government-only.
    "top_origin_share": Gauge(
        "mews_scoring_top_origin_share", "Largest third country's share of extra-EU imports (0-1)", ["material"]
    ),
    "news_signals_30d": Gauge(
        "mews_scoring_news_signals_30d",
        "Supply-signal news items (not export controls) of a material in 30 days",
        ["material"],
    ),
}


def visible(level: Classification | str, clearance: Classification) -> bool:
    """Whether something at a classification level may be shown to a caller with a clearance."""
    return clearance.allows(level)


def redact_breach(breach: BreachRaised, clearance: Classification) -> BreachRaised | None:
    """The breach as a caller may see it: None above their clearance, else without evidence above it."""
    if not visible(breach.classification, clearance):
        return None
    evidence = [e for e in breach.evidence if visible(e.classification, clearance)]
    if len(evidence) == len(breach.evidence):
        return breach
    return breach.model_copy(update={"evidence": evidence})


def visible_controls(controls: Iterable[dict[str, Any]], clearance: Classification) -> list[dict[str, Any]]:
    """Export controls a caller may see (a control without a classification is public)."""
    return [c for c in controls if visible(c.get("classification") or Classification.PUBLIC, clearance)]


# Snapshots kept per material for sparklines: at the default of one a second at most, the last minute of a busy
# material, or the last 60 changes of a quiet one. The compacted topic keeps only the latest snapshot of each
# material, so after a restart the history starts again from it.
HISTORY_LENGTH = 60


@dataclass
class MaterialsView:
    """Latest snapshot per material, its last `history_length` snapshots, and latest state per breach fingerprint."""

    snapshots: dict[str, IndicatorSnapshot] = field(default_factory=dict)
    history_length: int = HISTORY_LENGTH
    history: dict[str, deque[IndicatorSnapshot]] = field(default_factory=dict)
    # By material, then fingerprint: the per-material reads below run after every fetch.
    breaches_of: dict[str, dict[str, BreachRaised]] = field(default_factory=dict)

    @property
    def breaches(self) -> dict[str, BreachRaised]:
        """Every breach's latest state by fingerprint."""
        return {fp: b for of_material in self.breaches_of.values() for fp, b in of_material.items()}

    def apply(self, event: Event) -> bool:
        """Fold one event in; False when it is of a kind the view does not hold."""
        if isinstance(event, IndicatorSnapshot):
            self.snapshots[event.material] = event
            self._remember(event)
            return True
        if isinstance(event, BreachRaised):
            self.breaches_of.setdefault(event.material, {})[event.fingerprint] = event
            return True
        return False

    def _remember(self, snap: IndicatorSnapshot) -> None:
        recent = self.history.setdefault(snap.material, deque(maxlen=self.history_length))
        # A snapshot read again (a rewound feed) or one of the same moment replaces, never repeats, a point.
        while recent and recent[-1].as_of >= snap.as_of:
            recent.pop()
        recent.append(snap)

    def snapshot(self, material: str) -> IndicatorSnapshot | None:
        return self.snapshots.get(material)

    def recent(self, material: str) -> list[IndicatorSnapshot]:
        """A material's last snapshots, oldest first."""
        return list(self.history.get(material, ()))

    def open_breaches(self, material: str, clearance: Classification) -> list[BreachRaised]:
        """Firing breaches of a material that the caller may see, oldest first."""
        shown = []
        for breach in self.breaches_of.get(material, {}).values():
            if breach.status != BreachStatus.FIRING:
                continue
            redacted = redact_breach(breach, clearance)
            if redacted is not None:
                shown.append(redacted)
        return sorted(shown, key=lambda b: (b.starts_at, b.fingerprint))

    def firing_counts(self, material: str) -> dict[str, int]:
        """Open breaches of a material per severity, whatever their classification (for metrics)."""
        counts: dict[str, int] = {}
        for breach in self.breaches_of.get(material, {}).values():
            if breach.status == BreachStatus.FIRING:
                counts[breach.severity.value] = counts.get(breach.severity.value, 0) + 1
        return counts


def export_material_metrics(view: MaterialsView, material: str) -> None:
    """Set a material's gauges from the view, so every replica exports the same numbers."""
    snap = view.snapshot(material)
    if snap is not None:
        if snap.risk_score is not None:
            child(RISK_SCORE, material).set(snap.risk_score)
        for component, value in snap.components.items():
            child(RISK_COMPONENT, material, component).set(value)
        for name, gauge in INDICATOR_GAUGES.items():
            indicator = snap.indicators.get(name)
            if indicator is not None:
                child(gauge, material).set(indicator)
    counts = view.firing_counts(material)
    for severity in ("warning", "critical"):
        child(BREACHES_FIRING, material, severity).set(counts.get(severity, 0))


class ViewFeed:
    """Consumes the indicators and breaches topics into a `MaterialsView`; knows when it has caught up."""

    def __init__(self, bootstrap: str, namespace: str, view: MaterialsView) -> None:
        self.view = view
        self._topics = {t.qualified(namespace): t for t in (declared.INDICATORS, declared.BREACHES)}
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._targets: dict[TopicPartition, int] = {}
        self._task: asyncio.Task | None = None
        self.caught_up = asyncio.Event()

    async def start(self) -> None:
        """Assign every partition, start from the beginning, and remember where 'now' ends."""
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="mews-scoring-view",
        )
        await self._consumer.start()
        await self._consumer.topics()  # fetches metadata of every topic, so partition counts are known
        partitions = []
        for name, topic in self._topics.items():
            numbers = self._consumer.partitions_for_topic(name) or set(range(topic.partitions))
            partitions += [TopicPartition(name, p) for p in sorted(numbers)]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._targets = {tp: end for tp, end in (await self._consumer.end_offsets(partitions)).items() if end}
        self._task = asyncio.create_task(self._run(), name="scoring-view-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def readiness(self) -> str | None:
        """None once the view holds everything written before it started, else why not."""
        if self._task is not None and self._task.done():
            return "view feed stopped"
        return None if self.caught_up.is_set() else "view still loading indicators and breaches"

    async def _run(self) -> None:
        assert self._consumer is not None
        await self._check_caught_up()
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=1000)
            changed: set[str] = set()
            for tp, messages in batches.items():
                if self._topics[tp.topic] is declared.BREACHES:
                    changed |= self._fold_latest(tp.topic, messages)
                    continue
                for message in messages:
                    material = self._fold(tp.topic, message.value)
                    if material is not None:
                        changed.add(material)
            for material in changed:  # once per material and fetch: the gauges show the view after the fetch
                export_material_metrics(self.view, material)
            await self._check_caught_up()

    def _fold_latest(self, topic: str, messages: list[Any]) -> set[str]:
        """Fold one fetch of a breaches partition: of each fingerprint (the key), only its last readable message.

        The view keeps only a breach's latest state, and a backfill writes many transitions of one fingerprint per
        fetch: the earlier ones would be decoded only to be replaced. Folded newest first, the first message of a
        key that folds settles it, so the state left is the one folding every message in order would leave.
        """
        changed: set[str] = set()
        settled: set[bytes] = set()
        for message in reversed(messages):
            key = message.key
            if key is not None and key in settled:
                child(VIEW_EVENTS, self._topics[topic].name, "superseded").inc()
                continue
            material = self._fold(topic, message.value)
            if material is not None:
                changed.add(material)
                if key is not None:
                    settled.add(key)
        return changed

    def _fold(self, topic: str, raw: bytes | None) -> str | None:
        """Apply one message to the view; the material it changed, if any."""
        name = self._topics[topic].name
        if raw is None:  # a tombstone in the compacted topic: nothing to show
            child(VIEW_EVENTS, name, "tombstone").inc()
            return None
        try:
            _, event = decode(raw)
        except EnvelopeError as exc:
            # The worker writes these topics; a bad message here is a bug upstream, not input to quarantine.
            child(VIEW_EVENTS, name, "invalid").inc()
            log.error("view skipped an invalid message", extra={"topic": topic, "reason": str(exc)})
            return None
        if not self.view.apply(event):
            child(VIEW_EVENTS, name, "ignored").inc()
            return None
        child(VIEW_EVENTS, name, "ok").inc()
        return getattr(event, "material", "")

    async def _check_caught_up(self) -> None:
        if self.caught_up.is_set() or self._consumer is None:
            return
        positions = [await self._consumer.position(tp) for tp in self._targets]
        if all(pos >= end for pos, end in zip(positions, self._targets.values(), strict=True)):
            self.caught_up.set()
            log.info(
                "read view caught up",
                extra={"materials": len(self.view.snapshots), "breaches": len(self.view.breaches)},
            )
