"""The one declaration of every Kafka topic mews uses.

The local broker, the tests, the services and the Strimzi KafkaTopic resources are all made from this list,
so a topic cannot exist in one place and be missing in another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Topic:
    """A Kafka topic: its name carries the schema version of what it holds."""

    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"
    description: str = ""
    extra_config: dict[str, str] = field(default_factory=dict)

    def qualified(self, namespace: str = "") -> str:
        """The name on the broker; a namespace keeps test runs and tenants of one cluster apart."""
        return f"{namespace}.{self.name}" if namespace else self.name

    def config(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        cfg = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        cfg.update(self.extra_config)
        return cfg


# Every input topic is keyed by material id and has the same partition count, so the scoring
# service can join them per material without repartitioning.
MATERIAL_PARTITIONS = 6

PRICES = Topic(
    "mews.prices.v1",
    MATERIAL_PARTITIONS,
    3650 * DAY_MS,
    description="Normalised commodity price observations, keyed by material",
)
NEWS = Topic(
    "mews.news.v1",
    MATERIAL_PARTITIONS,
    3650 * DAY_MS,
    description="Classified export-control news items, keyed by material",
)
TRADE = Topic(
    "mews.trade.v1",
    MATERIAL_PARTITIONS,
    3650 * DAY_MS,
    description="Trade flows (imports by origin), keyed by material",
)
LEADTIMES = Topic(
    "mews.leadtimes.v1", MATERIAL_PARTITIONS, 3650 * DAY_MS, description="Quoted supplier lead times, keyed by material"
)
STOCKS = Topic(
    "mews.stocks.v1",
    MATERIAL_PARTITIONS,
    3650 * DAY_MS,
    description="Stock reports (tonnes held), keyed by material; government-only by default",
)
BREACHES = Topic(
    "mews.breaches.v1",
    MATERIAL_PARTITIONS,
    365 * DAY_MS,
    description="Threshold breaches: fired, escalated, resolved; keyed by fingerprint",
)
# Compacted: the latest snapshot per material is the state dashboards and APIs read.
INDICATORS = Topic(
    "mews.indicators.v1",
    MATERIAL_PARTITIONS,
    -1,
    cleanup_policy="compact",
    description="Latest indicator snapshot per material",
    extra_config={"min.cleanable.dirty.ratio": "0.1", "segment.ms": str(DAY_MS)},
)
DEADLETTER = Topic(
    "mews.deadletter.v1",
    1,
    90 * DAY_MS,
    description="Anything that could not be parsed or validated, with reason and original bytes",
)

ALL: tuple[Topic, ...] = (PRICES, NEWS, TRADE, LEADTIMES, STOCKS, BREACHES, INDICATORS, DEADLETTER)


def by_name(name: str) -> Topic:
    """Look a declared topic up by name."""
    for topic in ALL:
        if topic.name == name:
            return topic
    raise KeyError(f"topic {name!r} is not declared in shared/topics.py")
