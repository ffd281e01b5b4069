"""The notifier's REST API under /v1/: one router per resource."""
