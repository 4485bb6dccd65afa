"""Timestamps: one UTC form with nanoseconds, whose text order is time order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_onepassword.timestamps import format_timestamp, normalise_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("sent", "normalised"),
    [
        ("2021-08-11T14:28:03Z", "2021-08-11T14:28:03.000000000Z"),
        ("2021-08-30T18:57:42.484Z", "2021-08-30T18:57:42.484000000Z"),
        ("2024-12-02T11:54:21.24645983Z", "2024-12-02T11:54:21.246459830Z"),
        ("2022-10-24T21:16:52.827288935Z", "2022-10-24T21:16:52.827288935Z"),
        ("2021-03-01T16:32:50-03:00", "2021-03-01T19:32:50.000000000Z"),
        ("2023-03-15T23:33:50.5-03:00", "2023-03-16T02:33:50.500000000Z"),
        ("2020-06-11T16:32:50+05:30", "2020-06-11T11:02:50.000000000Z"),
        ("2020-01-01t00:00:00.1234567891z", "2020-01-01T00:00:00.123456789Z"),
        ("2020-01-01 00:00:00Z", "2020-01-01T00:00:00.000000000Z"),
    ],
)
def test_shapes_the_api_sends(sent: str, normalised: str) -> None:
    assert normalise_timestamp(sent) == normalised


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "yesterday",
        "2021-08-11",
        "2021-08-11T14:28Z",
        "2021-13-01T00:00:00Z",
        "2021-08-11T14:28:03.Z",
        "2021-08-11T14:28:03.12a4Z",
        "2021-08-11T14:28:03+25:00x",
    ],
)
def test_not_a_timestamp_is_refused(garbage: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        normalise_timestamp(garbage)


instants = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2099, 12, 31),  # noqa: DTZ001
    timezones=st.just(timezone.utc),
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60)
fractions = st.integers(min_value=0, max_value=999_999_999)
digits = st.integers(min_value=0, max_value=9)


def render(instant: datetime, nanos: int, width: int, offset_minutes: int) -> str:
    """Write an instant as the API might: any fraction width, `Z` or an offset."""
    local = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if width:
        text += "." + f"{nanos:09d}"[:width]
    if offset_minutes == 0:
        return text + "Z"
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


stamps = st.tuples(instants, fractions, digits, offsets)


def sent_and_instant(stamp: tuple[datetime, int, int, int]) -> tuple[str, tuple[datetime, int]]:
    """A timestamp as the API might send it, and the instant it means (seconds, nanos)."""
    instant, nanos, width, offset = stamp
    kept = int(f"{nanos:09d}"[:width].ljust(9, "0")) if width else 0
    whole = instant.replace(microsecond=0)
    return render(whole, nanos, width, offset), (whole, kept)


@given(stamps, stamps)
def test_text_order_is_time_order(
    a: tuple[datetime, int, int, int], b: tuple[datetime, int, int, int]
) -> None:
    sent_a, key_a = sent_and_instant(a)
    sent_b, key_b = sent_and_instant(b)
    text_a, text_b = normalise_timestamp(sent_a), normalise_timestamp(sent_b)
    assert (text_a < text_b) == (key_a < key_b)
    assert (text_a == text_b) == (key_a == key_b)


@given(instants, fractions, digits, offsets)
def test_nanoseconds_survive(instant: datetime, nanos: int, width: int, offset: int) -> None:
    text = normalise_timestamp(render(instant.replace(microsecond=0), nanos, width, offset))
    kept = f"{nanos:09d}"[:width].ljust(9, "0") if width else "000000000"
    assert text[20:29] == kept
    assert parse_timestamp(text).replace(microsecond=0) == instant.replace(microsecond=0)


def test_format_and_parse_round_trip() -> None:
    instant = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=timezone.utc)
    assert format_timestamp(instant) == "2025-03-04T05:06:07.890123000Z"
    assert parse_timestamp(format_timestamp(instant)) == instant
