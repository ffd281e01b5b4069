"""Delivery: the outbox worker and the two provider clients behind it (webhook, email)."""
