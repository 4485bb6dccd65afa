"""A client-side request budget per token: never more than N a minute and M an hour.

The Events API allows 600 requests a minute and 30,000 an hour; whether per token or per
account is not documented, so the tap assumes the strictest reading: one budget per token,
shared by every stream and account that uses it. The budget is a pair of sliding windows over
the times requests were sent: a request may go when fewer than N were sent in the last 60 s
and fewer than M in the last 3600 s. It is thread-safe so that pages can later be fetched
ahead on background threads, and its clock and sleep are injectable for tests.

The server counts a request when it arrives, the budget when it is let go; the gap varies
(a new connection, a busy machine). Windows exactly 60 s long let the server see 601 in its
minute when the first request of a window was slow to arrive and the 601st was quick, so each
window is kept a margin longer (one second by default) than the server's.

A caller held back long (the budget used up, or the API's 429 pausing the token) is not left
silent: a wait of `NOTICE_AFTER` seconds or more is told to the budget's `on_long_wait` (the tap
logs it, naming the token's accounts and until when), and the caller sleeps at most
`NOTICE_EVERY` seconds at a time, telling it again each time. Several threads waiting on one
budget share one notice per step.

The v3 beta also says where the server's window stands (`RateLimit-*` headers):
`rate_limit_pause` reads them, so a spent window holds the budget until it frees.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

MINUTE = 60.0
HOUR = 3600.0
MAX_PAUSE = 3600.0
"""The longest hold the server's headers may ask for: the API's longest window (one hour)."""
ARRIVAL_MARGIN = 1.0
"""Seconds added to both windows: more than the spread of send-to-arrival delays."""
NOTICE_AFTER = 5.0
"""A wait at least this long is told to `on_long_wait`."""
NOTICE_EVERY = 10.0
"""Longest sleep without a notice while a long wait lasts (the log's longest silence)."""

LongWaitNotice = Callable[[str, float], None]
"""Told why a caller waits (e.g. `the per-minute budget of 40 requests is used up`) and how
many seconds are left."""


def even_step(wait: float) -> float:
    """Split a wait into even steps of at most `NOTICE_EVERY` seconds; return one step.

    Even steps of a long wait each last `NOTICE_AFTER` or more, so each is worth telling (a
    61 s wait: seven steps of 8.7 s, not six of 10 s and a last of 1 s).

    Args:
        wait: Seconds to wait, positive.

    Returns:
        Seconds of one step.

    """
    return wait / math.ceil(wait / NOTICE_EVERY)


def wait_in_steps(
    seconds: float,
    tell: Callable[[float], None],
    *,
    sleep: Callable[[float], None] | None = None,
) -> None:
    """Wait `seconds` in even steps, telling `tell` the seconds left before each but the first.

    Whoever starts the wait says so already; the later steps keep the log from falling silent.

    Args:
        seconds: How long to wait.
        tell: Told the seconds left, at most `NOTICE_EVERY` seconds apart.
        sleep: Blocks for a number of seconds (default: `time.sleep`, looked up when called).

    """
    if seconds <= 0:
        return
    step = even_step(seconds)
    steps = round(seconds / step)
    for done in range(steps):
        if done:
            tell(seconds - done * step)
        (sleep or time.sleep)(step)


class RateBudget:
    """Sliding per-minute and per-hour request windows for one token."""

    def __init__(  # noqa: PLR0913 - two limits, then what tests and the tap inject
        self,
        per_minute: int,
        per_hour: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = ARRIVAL_MARGIN,
        on_long_wait: LongWaitNotice | None = None,
    ) -> None:
        """Create an empty budget.

        Args:
            per_minute: Most requests in any 60-second window.
            per_hour: Most requests in any 3600-second window.
            clock: Monotonic seconds (injectable for tests).
            sleep: Blocks the caller for a number of seconds (injectable for tests).
            margin: Seconds each window is kept longer than the server's (see module doc).
            on_long_wait: Told about long waits, at most every `NOTICE_EVERY` seconds.

        """
        if per_minute < 1 or per_hour < 1:
            msg = "a rate budget needs at least one request per window"
            raise ValueError(msg)
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._clock = clock
        self._sleep = sleep
        self._minute_span = MINUTE + margin
        self._hour_span = HOUR + margin
        self._lock = threading.Lock()
        self._minute: deque[float] = deque()
        self._hour: deque[float] = deque()
        self._paused_until = 0.0
        self._on_long_wait = on_long_wait
        self._next_notice = 0.0
        self.waited = 0.0
        """Seconds callers spent waiting for the budget, for the run summary."""

    def _wait_needed(self, now: float) -> tuple[float, str]:
        """Seconds until a request may go (0: now), and why. Caller holds the lock."""
        while self._minute and now - self._minute[0] >= self._minute_span:
            self._minute.popleft()
        while self._hour and now - self._hour[0] >= self._hour_span:
            self._hour.popleft()
        wait, reason = self._paused_until - now, "the API answered 429 Too Many Requests"
        if len(self._minute) >= self.per_minute:
            until_minute = self._minute[0] + self._minute_span - now
            if until_minute > wait:
                wait = until_minute
                reason = f"the per-minute budget of {self.per_minute} requests is used up"
        if len(self._hour) >= self.per_hour:
            until_hour = self._hour[0] + self._hour_span - now
            if until_hour > wait:
                wait = until_hour
                reason = f"the per-hour budget of {self.per_hour} requests is used up"
        return max(wait, 0.0), reason

    def acquire(self) -> None:
        """Block until a request fits both windows, then count it as sent."""
        while True:
            notice = False
            with self._lock:
                now = self._clock()
                wait, reason = self._wait_needed(now)
                if wait <= 0:
                    self._minute.append(now)
                    self._hour.append(now)
                    self._next_notice = 0.0  # the next hold-up is told at once
                    return
                step = even_step(wait)
                if wait >= NOTICE_AFTER and now >= self._next_notice:
                    self._next_notice = now + step
                    notice = self._on_long_wait is not None
                self.waited += step
            if notice and self._on_long_wait is not None:
                self._on_long_wait(reason, wait)
            self._sleep(step)

    def pause(self, seconds: float) -> None:
        """Hold every user of this token for `seconds` (the server said 429: it counts more).

        Args:
            seconds: How long nobody may send, from now.

        """
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def heed_rate_limit_headers(self, response: requests.Response) -> None:
        """Hold every user of the token while the server says its window is spent (v3).

        Args:
            response: Any answer; only `RateLimit-*` headers that say so pause the budget.

        """
        spent = rate_limit_pause(response)
        if spent is not None:
            self.pause(spent)


def rate_limit_pause(response: requests.Response) -> float | None:
    """Read the `RateLimit-*` headers (v3): how long to hold the token when its window is spent.

    Header names are case-insensitive; values are read leniently: a number, or the first
    number of a structured value (`0;w=60`); anything unreadable is ignored. `Reset` is seconds
    until the window frees (an epoch time, which some servers send, is made seconds from now).

    Args:
        response: Any response.

    Returns:
        Seconds to pause (0 to `MAX_PAUSE`) when `RateLimit-Remaining` is 0 and a reset
        is given; None otherwise.

    """
    remaining = _header_number(response, "RateLimit-Remaining")
    if remaining is None or remaining > 0:
        return None
    reset = _header_number(response, "RateLimit-Reset")
    if reset is None:
        return None
    if reset > _EPOCH_THRESHOLD:
        reset -= time.time()
    return min(max(reset, 0.0), MAX_PAUSE)


_EPOCH_THRESHOLD = 1_000_000_000.0
"""A reset this large is an epoch time, not seconds (2001 onwards)."""


def _header_number(response: requests.Response, name: str) -> float | None:
    value = response.headers.get(name)
    if not value:
        return None
    head = value.split(",")[0].split(";")[0].strip().strip('"')
    try:
        number = float(head)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
