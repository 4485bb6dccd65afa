"""Event timestamps normalised to one UTC form with nanoseconds: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.

The API sends RFC 3339 date-times with 0 to 9 fractional digits, usually with `Z`, sometimes
with an offset (`-03:00`). The Singer SDK compares bookmarks as strings, and targets compare
them as instants; a single fixed-width UTC form with nine fractional digits keeps every event's
nanoseconds and makes string order equal time order. This runs once per record, so the common
`...Z` shapes are handled with string operations and only offsets take the parsing path.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

_NANOS = 9
_ZERO_FRACTION = ".000000000Z"
_ZERO_DIGITS = "000000000"
_NORMAL_SIZE = len("2025-01-01T00:00:00.000000000Z")
_WHOLE_SECONDS_SIZE = len("2025-01-01T00:00:00Z")
# The common shape, `Z` with 0 to 9 fraction digits and fields in range, days that exist in
# their month included (no February 30, no April 31, no year 0). One C-level match per record
# instead of several string checks; only February 29 needs a leap-year look afterwards.
_UTC_Z = re.compile(
    r"(?!0000)\d{4}-"
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-9])|(?:0[13-9]|1[0-2])-30|(?:0[13578]|1[02])-31)"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?Z",
    re.ASCII,
)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:[Zz]|([+-])(\d{2}):?(\d{2}))",
    re.ASCII,
)


def normalise_timestamp(value: str) -> str:
    """Return the same instant as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.

    Args:
        value: An RFC 3339 date-time; fractions beyond nine digits are cut (below 1 ns).

    Returns:
        The normalised UTC timestamp.

    Raises:
        ValueError: `value` is not an RFC 3339 date-time.

    """
    if _UTC_Z.fullmatch(value) is not None:
        if value[5:10] == "02-29" and not _is_calendar_day(value):
            msg = f"not an RFC 3339 date-time: {value!r}"
            raise ValueError(msg)
        size = len(value)
        if size == _NORMAL_SIZE:
            return value
        if size == _WHOLE_SECONDS_SIZE:
            return value[:19] + _ZERO_FRACTION
        return value[:-1] + _ZERO_DIGITS[: _NORMAL_SIZE - size] + "Z"
    return _normalise_parsed(value)


def _is_calendar_day(value: str) -> bool:
    """Tell whether `YYYY-MM-DD` at the start of `value` is a day that exists."""
    try:
        date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return True


def _normalise_parsed(value: str) -> str:
    """Parse the general case: offsets, lower-case `t`/`z`, a space separator, long fractions."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        msg = f"not an RFC 3339 date-time: {value!r}"
        raise ValueError(msg)
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    try:
        offset = timezone.utc
        if sign:
            delta = timedelta(hours=int(off_h), minutes=int(off_m))
            offset = timezone(-delta if sign == "-" else delta)
        instant = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=offset
        ).astimezone(timezone.utc)
    except ValueError:
        msg = f"not an RFC 3339 date-time: {value!r}"
        raise ValueError(msg) from None
    nanos = (fraction or "")[:_NANOS].ljust(_NANOS, "0")
    return (
        f"{instant.year:04d}-{instant.month:02d}-{instant.day:02d}T"
        f"{instant.hour:02d}:{instant.minute:02d}:{instant.second:02d}.{nanos}Z"
    )


def parse_timestamp(value: str) -> datetime:
    """Read a normalised (or any RFC 3339) timestamp as an aware datetime, to microseconds.

    Args:
        value: An RFC 3339 date-time.

    Returns:
        The instant in UTC (nanoseconds beyond the microsecond are dropped).

    """
    normal = normalise_timestamp(value)
    return datetime.fromisoformat(normal[:26] + "+00:00")


def format_timestamp(instant: datetime) -> str:
    """Write an aware datetime in the normalised form.

    Args:
        instant: An aware datetime.

    Returns:
        `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` in UTC.

    """
    utc = instant.astimezone(timezone.utc)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}000Z"
    )


def rfc3339_floor(instant: datetime) -> str:
    """Whole seconds, rounded down (an earlier start only re-reads, never skips)."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_ceil(instant: datetime) -> str:
    """Whole seconds, rounded up (the tap drops events at or after end_date itself)."""
    utc = instant.astimezone(timezone.utc)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
