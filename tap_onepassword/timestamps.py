"""Event timestamps normalised to one UTC form with nanoseconds: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.

The API sends RFC 3339 date-times with 0 to 9 fractional digits, usually with `Z`, sometimes
with an offset (`-03:00`). The Singer SDK compares bookmarks as strings, and targets compare
them as instants; a single fixed-width UTC form with nine fractional digits keeps every event's
nanoseconds and makes string order equal time order. This runs once per record, so the common
`...Z` shapes are handled with string operations and only offsets take the parsing path.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_NANOS = 9
_ZERO_FRACTION = ".000000000Z"
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:[Zz]|([+-])(\d{2}):?(\d{2}))",
    re.ASCII,
)


def _looks_like_utc_date_time(value: str) -> bool:
    """`YYYY-MM-DDTHH:MM:SS` followed by more: ASCII digits where digits belong, in range.

    Cheap checks only (no calendar: February 30 passes here and fails later, where parsed).
    """
    if not (
        value[4] == "-" and value[7] == "-" and value[10] == "T" and value[13] == ":"
    ) or value[16] != ":":
        return False
    digits = value[0:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + value[17:19]
    return (
        digits.isascii()
        and digits.isdigit()
        and "01" <= value[5:7] <= "12"
        and "01" <= value[8:10] <= "31"
        and value[11:13] <= "23"
        and value[14:16] <= "59"
        and value[17:19] <= "59"
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
    size = len(value)
    if size >= 20 and value[-1] == "Z" and _looks_like_utc_date_time(value):  # noqa: PLR2004
        if size == 20:  # noqa: PLR2004 - whole seconds: ...SSZ
            return value[:19] + _ZERO_FRACTION
        fraction = value[20:-1]
        if value[19] == "." and 0 < len(fraction) <= _NANOS and fraction.isascii():
            if not fraction.isdigit():
                msg = f"not an RFC 3339 date-time: {value!r}"
                raise ValueError(msg)
            if len(fraction) == _NANOS:
                return value
            return value[:20] + fraction.ljust(_NANOS, "0") + "Z"
    return _normalise_parsed(value)


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
