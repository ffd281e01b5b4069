"""What the store's functions raise: the API turns each into one status code."""

from __future__ import annotations


class NotFound(LookupError):
    """No such row in the caller's organisation (another organisation's row is not found either)."""


class Rejected(ValueError):
    """The request breaks a rule; the message says which, in words a user can act on."""


class Conflict(RuntimeError):
    """The row is in a state that forbids the change (a replay of a delivered notification, say)."""
