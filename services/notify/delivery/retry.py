"""When to try a failed notification again: exponential backoff, capped, with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetrySchedule:
    """Delay before attempt n+1 grows from `initial` by `multiplier`, up to `max_interval`; `jitter` of it is random.

    jitter=1 is AWS's "full jitter" (uniform between 0 and the capped delay): retries of many notifications
    after one outage spread out instead of arriving together.
    """

    initial: float = 30.0
    multiplier: float = 2.0
    max_interval: float = 3600.0
    jitter: float = 0.2
    max_attempts: int = 12

    def ceiling(self, attempts: int) -> float:
        """The capped delay, in seconds, after `attempts` failed attempts (before jitter)."""
        return min(self.max_interval, self.initial * self.multiplier ** max(0, attempts - 1))

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """How long to wait after `attempts` failed attempts."""
        ceiling = self.ceiling(attempts)
        draw = (rng or random).random()
        return timedelta(seconds=ceiling * (1 - self.jitter) + ceiling * self.jitter * draw)

    def exhausted(self, attempts: int) -> bool:
        """No attempt is left after `attempts` tries."""
        return attempts >= self.max_attempts

    def span(self) -> timedelta:
        """The longest time from the first to the last attempt (no jitter drawn)."""
        return timedelta(seconds=sum(self.ceiling(n) for n in range(1, self.max_attempts)))


@dataclass
class Backoff:
    """The waits of one loop while a dependency is away: `schedule`'s delays (no jitter drawn), reset by a success."""

    schedule: RetrySchedule
    failures: int = 0

    def next(self) -> float:
        """Seconds to wait after one more failure in a row."""
        self.failures += 1
        return self.schedule.ceiling(self.failures)

    def reset(self) -> None:
        self.failures = 0


def outage_backoff(initial: float, cap: float) -> Backoff:
    """Waits from `initial` seconds, doubled after each failure, at most `cap`, for as long as it takes."""
    return Backoff(RetrySchedule(initial=initial, max_interval=cap, jitter=0.0, max_attempts=1 << 30))
