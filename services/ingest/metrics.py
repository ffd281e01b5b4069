"""The ingest service's Prometheus metrics; names agreed across the team so dashboards and alerts work."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FETCHES = Counter("mews_ingest_fetches", "Source fetches by outcome (ok, not_modified, error)", ["source", "outcome"])
FETCH_ERRORS = Counter("mews_ingest_fetch_errors", "Failed source fetches by reason", ["source", "reason"])
PUBLISHED = Counter("mews_ingest_items_published", "Events published to Kafka", ["source", "kind"])
REJECTED = Counter(
    "mews_ingest_items_rejected",
    "Items refused, with the reason; feed items are dead-lettered",
    ["source", "kind", "reason"],
)
SKIPPED = Counter(
    "mews_ingest_items_skipped",
    "Valid items that carry no signal for any material (e.g. news naming none): not errors",
    ["source", "kind", "reason"],
)
NOT_ACKNOWLEDGED = Counter(
    "mews_ingest_items_not_acknowledged",
    "Items Kafka did not acknowledge within the deadline: abandoned, not recorded as seen, "
    "for the sender (feed poller or API client) to send again",
    ["source", "kind"],
)
DUPLICATES = Counter("mews_ingest_items_duplicate", "Items already published before", ["source", "kind"])
NEWEST_ITEM = Gauge(
    "mews_ingest_newest_item_timestamp_seconds",
    "Event time of the newest item published (a trade flow's is the start of its period)",
    ["source", "kind"],
)
LAST_SUCCESS = Gauge(
    "mews_ingest_last_success_timestamp_seconds",
    "When a source was last fetched and published without error",
    ["source"],
)
CONSECUTIVE_FAILURES = Gauge(
    "mews_ingest_source_consecutive_failures", "Failed fetches since the last success", ["source"]
)
API_ITEMS = Counter("mews_ingest_api_items", "Items posted to the push API by outcome", ["kind", "outcome"])
TRADE_ROWS_SUMMED = Counter(
    "mews_ingest_trade_rows_summed",
    "Trade rows summed into one flow (statistical procedures, or member states into EU27)",
    ["source"],
)
SEEN_PENDING = Gauge(
    "mews_ingest_seen_keys_pending", "Published keys held in memory until the seen-store writer has them in its file"
)
SEEN_WRITE_FAILURES = Counter(
    "mews_ingest_seen_write_failures", "Seen-store writes that failed (retried; the keys stay de-duplicated in memory)"
)
