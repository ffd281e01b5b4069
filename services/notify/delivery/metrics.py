"""The notifier's delivery metrics (names agreed with the dashboards and alert rules)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "mews_notify_deliveries_total",
    "Delivery attempts by channel kind and outcome (delivered, retry, failed: the last try gave up, "
    "gone, refused, rejected)",
    ["channel", "outcome"],
)
RETRIES = Counter("mews_notify_delivery_retries_total", "Failed attempts scheduled for another try", ["channel"])
RETRY_AFTER = Counter(
    "mews_notify_delivery_retry_after_total",
    "Failed attempts whose receiver asked for a wait (429 or 503 with Retry-After), honoured",
    ["channel"],
)
OUTBOX_DEPTH = Gauge("mews_notify_outbox_depth", "Notifications pending or being sent", ["channel"])
OLDEST_PENDING = Gauge(
    "mews_notify_outbox_oldest_pending_age_seconds", "Age of the oldest notification due and not yet delivered"
)
BREACH_TO_DELIVERY = Histogram(
    "mews_notify_breach_to_delivery_seconds",
    "From the breach reaching the notifier to the receiver accepting the notification",
    ["channel"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600),
)
OUTBOX_WAKEUPS = Counter(
    "mews_notify_outbox_wakeups_total",
    "Outbox rounds by what started them: signal (an enqueue here), notify (another replica), "
    "reconnect, slot (a send finished), due (a retry or group fell due) or poll",
    ["reason"],
)
OUTBOX_NOTIFY = Counter(
    "mews_notify_outbox_notify_total", "PostgreSQL NOTIFYs sent to other replicas, by result", ["result"]
)
OUTBOX_LISTENING = Gauge(
    "mews_notify_outbox_listening", "1 while the outbox holds its PostgreSQL LISTEN connection, else 0 (polling only)"
)
IN_FLIGHT = Gauge("mews_notify_deliveries_in_flight", "Sends under way", ["channel"])
WAITING = Gauge(
    "mews_notify_deliveries_waiting",
    "Claimed notifications waiting for their receiver's share of sends, or for the one before them in their group",
)
SEND_SECONDS = Histogram(
    "mews_notify_delivery_send_seconds",
    "Time of one send attempt, until the receiver answered",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CLAIM_DELAY = Histogram(
    "mews_notify_outbox_claim_delay_seconds",
    "From a notification's enqueue (the start of its dispatch transaction) to its first claim",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DATABASE_SECONDS = Histogram(
    "mews_notify_outbox_db_seconds",
    "Time of one database call of the outbox (its worker thread), by operation: claim, "
    "record (mark sent or retried), next_due, extend (leases), release, observe",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
UNSUBSCRIBES = Counter("mews_notify_unsubscribes_total", "Channels turned off by their unsubscribe link", ["channel"])
