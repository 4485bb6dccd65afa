"""Progress of one stream and account, logged at most every few seconds, and its summary.

A first backfill of a large account takes a while; the operator watching it wants to know how
many events have landed, how fast, and how far behind now the newest one is (which says how
much is left, since events arrive roughly in time order).

Lines stay readable with a thousand accounts: they name a few accounts and count the rest
(`name_some`), and the SDK's own line per partition goes to DEBUG (`PartitionChatter`).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from typing_extensions import override

from tap_onepassword.timestamps import parse_timestamp

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

LOG_INTERVAL_SECONDS = 5.0


def name_some(names: Sequence[str], limit: int = 3) -> str:
    """Name a few accounts and count the rest: `'a', 'b', 'c' and 7 more`.

    Args:
        names: Account names.
        limit: Most named.

    Returns:
        The phrase.

    """
    shown = ", ".join(f"'{name}'" for name in names[:limit])
    rest = len(names) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


def clock_in(seconds: float) -> str:
    """Give the UTC time of day `seconds` from now, as `HH:MM:SS`.

    Args:
        seconds: From now.

    Returns:
        The time.

    """
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%H:%M:%S")


class PartitionChatter(logging.Filter):
    """Turn the SDK's INFO line per partition into DEBUG.

    With a thousand accounts it is thousands of `Starting incremental sync of '...' with
    bookmark value: ...` lines; the tap's own lines and the run summary say more.
    """

    SDK_LINES = ("Starting incremental sync of ",)

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith(self.SDK_LINES):
            if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                return False
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


PARTITION_CHATTER = PartitionChatter()
"""Added to each event stream's logger."""


def describe_lag(seconds: float) -> str:
    """Say a duration the way a person reads it: `42 s`, `17 min`, `5.2 h`, `31 days`.

    Args:
        seconds: A non-negative duration.

    Returns:
        A short human reading.

    """
    if seconds < 120:  # noqa: PLR2004
        return f"{seconds:.0f} s"
    if seconds < 7200:  # noqa: PLR2004
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:  # noqa: PLR2004
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def seconds_behind(newest: str | None, now: datetime) -> float | None:
    """Seconds between `now` and the newest event (None: no event, or an unreadable time).

    Args:
        newest: A normalised event timestamp, or None.
        now: The present.

    Returns:
        Seconds, never negative, or None.

    """
    if newest is None:
        return None
    try:
        return max((now - parse_timestamp(newest)).total_seconds(), 0.0)
    except ValueError:
        return None


class Progress:
    """Counts records of one stream and account and logs progress lines."""

    def __init__(
        self,
        logger: logging.Logger,
        stream_name: str,
        account_name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        """Start counting.

        Args:
            logger: Where progress goes (INFO).
            stream_name: The stream.
            account_name: The configured account.
            clock: Monotonic seconds (injectable for tests).
            now: Wall-clock time, for the lag of the newest event.

        """
        self.logger = logger
        self.account_name = account_name
        self.label = f"{stream_name}, account '{account_name}'"
        self.records = 0
        self.pages = 0
        self.newest: str | None = None
        self._clock = clock
        self._now = now
        self._started = clock()
        self._last_log = self._started
        self.logged = False
        """Whether a progress line went out (then the closing line is worth INFO too)."""

    def _lag(self) -> str:
        if self.newest is None:
            return "no events yet"
        behind = seconds_behind(self.newest, self._now())
        if behind is None:
            return "newest event time unknown"
        return f"newest event {describe_lag(behind)} behind now"

    def _rate(self) -> float:
        elapsed = self._clock() - self._started
        return self.records / elapsed if elapsed > 0 else 0.0

    def page_done(self, records: int, newest: str | None) -> None:
        """Count a page and log a progress line when the last one is old enough.

        Args:
            records: Records emitted from the page.
            newest: Largest normalised timestamp among them, if any.

        """
        self.records += records
        self.pages += 1
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest
        if self._clock() - self._last_log >= LOG_INTERVAL_SECONDS:
            self._last_log = self._clock()
            self.logged = True
            self.logger.info(
                "%s: %d records so far (%.0f records/s), %s",
                self.label,
                self.records,
                self._rate(),
                self._lag(),
            )

    @property
    def seconds(self) -> float:
        """Seconds since the partition started."""
        return self._clock() - self._started

    def summary(self) -> str:
        """One line for the end of the stream and account.

        Returns:
            Records, pages, time, rate and lag.

        """
        elapsed = self._clock() - self._started
        return (
            f"{self.label}: {self.records} records in {self.pages} pages, {elapsed:.1f} s "
            f"({self._rate():.0f} records/s), {self._lag()}"
        )
