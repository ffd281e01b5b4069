"""Throttling of failed authentication, per client address and per key prefix.

A key that is valid is always let in, whatever failed before from its address: the throttle only turns the
answer to a *failed* attempt from 401 into 429 with Retry-After once an address, or a key prefix (the part of
a key that names it), has failed `limit` times within the window. Requests without any key are answered 401
and not counted: they guess nothing. A guesser is told to go away, and a
legitimate client behind the same address keeps working. Counters live in the process; the table is bounded.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NoReturn

from fastapi import HTTPException, Request, status
from prometheus_client import Counter

log = logging.getLogger(__name__)
AUTH_FAILURES = Counter(
    "mews_auth_failures_total", "Failed authentications, answered 401 or throttled with 429", ["service", "outcome"]
)
PREFIX_LENGTH = 13  # `mews_` and the 8 characters a notify key is looked up by; enough to name a static key too
MAX_TRACKED = 10_000


class AuthThrottle:
    """Fixed-window failure counters by address and by key prefix; `refuse` answers 401 or 429."""

    def __init__(
        self, service: str, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.service = service
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._windows: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    def _count(self, subject: tuple[str, str], now: float) -> float | None:
        """Count a failure of `subject`; the seconds until it may fail again when it is over the limit."""
        started, failures = self._windows.pop(subject, (now, 0))
        if now - started >= self.window:
            started, failures = now, 0
        failures += 1
        self._windows[subject] = (started, failures)
        while len(self._windows) > MAX_TRACKED:
            self._windows.popitem(last=False)
        if failures == self.limit + 1:  # once per subject and window: the moment a guesser is noticed
            # The address is logged; a key prefix is part of a key and is not.
            log.warning(
                "authentication throttled",
                extra={
                    "service": self.service,
                    "by": subject[0],
                    "address": subject[1] if subject[0] == "address" else "",
                },
            )
        return started + self.window - now if failures > self.limit else None

    def over_limit(self, *subjects: tuple[str, str]) -> float | None:
        """Count one attempt of each subject (e.g. `("address", ip)`); the seconds to wait when one is over the
        limit, else None. For actions that count every attempt, such as asking for a sign-in email."""
        now = self.clock()
        waits = [self._count(subject, now) for subject in subjects]
        return max((w for w in waits if w is not None), default=None)

    def refuse(self, request: Request, presented: str | None, detail: str = "a valid API key is required") -> NoReturn:
        """Raise 401 for a failed authentication, or 429 with Retry-After when its address or prefix is over."""
        waits: list[float | None] = []
        if presented:  # a request without a key guesses nothing; only wrong keys count
            now = self.clock()
            address = request.client.host if request.client is not None else "unknown"
            waits = [self._count(("address", address), now), self._count(("prefix", presented[:PREFIX_LENGTH]), now)]
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            AUTH_FAILURES.labels(self.service, "throttled").inc()
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many failed authentications; try later",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        AUTH_FAILURES.labels(self.service, "refused").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def auth_throttle(request: Request) -> AuthThrottle:
    """The throttle of the app serving `request` (every mews app installs one)."""
    return request.app.state.auth_throttle
