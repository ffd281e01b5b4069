"""Notify: alerts from breaches to subscribers, by email and signed webhooks, through a durable outbox."""
