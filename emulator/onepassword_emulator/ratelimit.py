"""Sliding-window rate limits per token, as the Events API documents them.

The service allows 600 requests a minute and 30,000 an hour. Whether that budget is per token
or per account is undocumented; the emulator counts per token. Only requests that are let
through count: a client that keeps retrying during a 429 is not pushed further back.
"""

from __future__ import annotations

import threading
from collections import deque

from onepassword_emulator.clock import NANOS_PER_SECOND, Clock

MINUTE_NS = 60 * NANOS_PER_SECOND
HOUR_NS = 3600 * NANOS_PER_SECOND


class RateLimiter:
    """Counts requests per key in sliding one-minute and one-hour windows."""

    def __init__(self, clock: Clock, per_minute: int = 600, per_hour: int = 30_000) -> None:
        """Allow ``per_minute`` and ``per_hour`` requests per key, timed by ``clock``."""
        self.clock = clock
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._minute: dict[str, deque[int]] = {}
        self._hour: dict[str, deque[int]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Record a request for ``key`` and say whether it is within both windows."""
        now = self.clock.now_ns()
        with self._lock:
            minute = self._minute.setdefault(key, deque())
            hour = self._hour.setdefault(key, deque())
            while minute and minute[0] <= now - MINUTE_NS:
                minute.popleft()
            while hour and hour[0] <= now - HOUR_NS:
                hour.popleft()
            if len(minute) >= self.per_minute or len(hour) >= self.per_hour:
                return False
            minute.append(now)
            hour.append(now)
            return True

    def status(self, key: str) -> tuple[int, int, int]:
        """Return the minute window of ``key`` as v3 reports it in ``RateLimit-*`` headers.

        Returns:
            (requests allowed a minute, requests left in the current window, whole seconds
            until the oldest counted request leaves the window: 0 when none is counted).

        """
        now = self.clock.now_ns()
        with self._lock:
            minute = [stamp for stamp in self._minute.get(key, ()) if stamp > now - MINUTE_NS]
        remaining = max(0, self.per_minute - len(minute))
        reset = -(-(minute[0] + MINUTE_NS - now) // NANOS_PER_SECOND) if minute else 0
        return self.per_minute, remaining, reset

    def reset(self) -> None:
        """Forget every request counted so far."""
        with self._lock:
            self._minute.clear()
            self._hour.clear()
