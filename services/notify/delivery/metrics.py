"""The notifier's delivery metrics (names agreed with the dashboards and alert rules)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter("mews_notify_deliveries_total", "Delivery attempts by channel kind and outcome",
                     ["channel", "outcome"])
RETRIES = Counter("mews_notify_delivery_retries_total", "Failed attempts scheduled for another try", ["channel"])
OUTBOX_DEPTH = Gauge("mews_notify_outbox_depth", "Notifications pending or being sent", ["channel"])
OLDEST_PENDING = Gauge("mews_notify_outbox_oldest_pending_age_seconds",
                       "Age of the oldest notification due and not yet delivered")
BREACH_TO_DELIVERY = Histogram("mews_notify_breach_to_delivery_seconds",
                               "From the breach's observation to the receiver accepting the notification",
                               ["channel"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600,
                                                     12 * 3600, 24 * 3600, 48 * 3600))
