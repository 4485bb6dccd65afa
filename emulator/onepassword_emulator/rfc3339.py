"""RFC 3339 timestamps as the Events API writes and reads them.

The service writes UTC with a ``Z`` and Go's ``RFC3339Nano`` layout: up to nine fractional
digits with trailing zeros trimmed, so one stream mixes 0 to 9 digits. It reads ``start_time``
and ``end_time`` with ``Z`` or a numeric offset. Both directions work on integer nanoseconds so
that no precision is lost between a stored event and the value a client sends back.
"""

from __future__ import annotations

import calendar
import functools
import re
import time

NANOS_PER_SECOND = 1_000_000_000

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


class TimestampError(ValueError):
    """A request carried a time that is not RFC 3339."""


_TWO_DIGITS = tuple(f"{number:02d}" for number in range(61))
_TIME_OF_DAY = tuple(f"{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))


@functools.lru_cache(maxsize=8192)
def _day_prefix(day: int) -> str:
    # Events span a few hundred days, so this cache always hits; strftime is the slow part.
    return time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))


def format_ns(nanos: int) -> str:
    """Render nanoseconds since the epoch the way Go's ``RFC3339Nano`` does (UTC, ``Z``)."""
    seconds, fraction = divmod(nanos, NANOS_PER_SECOND)
    day, second_of_day = divmod(seconds, 86_400)
    minute_of_day, second = divmod(second_of_day, 60)
    whole = _day_prefix(day) + _TIME_OF_DAY[minute_of_day] + _TWO_DIGITS[second]
    if fraction:
        return f"{whole}.{fraction:09d}".rstrip("0") + "Z"
    return whole + "Z"


def parse_ns(text: str) -> int:
    """Parse an RFC 3339 date-time (``Z`` or offset, any fraction) into UTC nanoseconds.

    Raises:
        TimestampError: when the text is not a complete RFC 3339 date-time.

    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        msg = f"invalid RFC 3339 date-time: {text!r}"
        raise TimestampError(msg)
    year, month, day, hour, minute, second = (int(match.group(n)) for n in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):  # noqa: PLR2004
        msg = f"invalid RFC 3339 date-time: {text!r}"
        raise TimestampError(msg)
    try:
        epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        time.strptime(f"{year:04d}-{month:02d}-{day:02d}", "%Y-%m-%d")
    except ValueError as exc:
        msg = f"invalid RFC 3339 date-time: {text!r}"
        raise TimestampError(msg) from exc
    fraction = match.group(7) or ""
    nanos = int((fraction + "000000000")[:9])
    if match.group(9):
        sign = 1 if match.group(9) == "+" else -1
        epoch -= sign * (int(match.group(10)) * 3600 + int(match.group(11)) * 60)
    return epoch * NANOS_PER_SECOND + nanos
