"""What one delivery attempt came to: the one small interface every provider client returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """The verdict of one attempt: delivered, retry later, or the endpoint is gone for good."""

    outcome: str  # delivered | retry | gone | refused | rejected
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait (Retry-After), if it did

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"
