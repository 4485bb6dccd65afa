"""The emulator's adjustable clock.

Rate-limit windows, the 120-day retention window, default ``start_time`` values, token expiry
and the timestamps of newly added events all read this one clock, so a test can move time
forward (``advance``) instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

NANOS_PER_SECOND = 1_000_000_000


class Clock:
    """Wall-clock time plus an offset that tests can move (never frozen, so windows still slide)."""

    def __init__(self) -> None:
        """Start at the real time."""
        self._offset_ns = 0
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        """Return the emulator's current time in nanoseconds since the Unix epoch."""
        return time.time_ns() + self._offset_ns

    def now(self) -> datetime:
        """Return the emulator's current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now_ns() / NANOS_PER_SECOND, tz=timezone.utc)

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, with a negative value) by ``seconds``."""
        with self._lock:
            self._offset_ns += round(seconds * NANOS_PER_SECOND)

    def set(self, when: datetime) -> None:
        """Make the clock read ``when`` now; it keeps running from there."""
        if when.tzinfo is None:
            msg = "the clock needs an aware datetime"
            raise ValueError(msg)
        target_ns = round(when.timestamp() * NANOS_PER_SECOND)
        with self._lock:
            self._offset_ns = target_ns - time.time_ns()
