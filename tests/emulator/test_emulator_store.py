"""Event selection, cursor signing and RFC 3339 handling, against simple reference models."""

from __future__ import annotations

from array import array
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onepassword_emulator.accounts import AccountSpec
from onepassword_emulator.data import AccountProfile, StreamRenderer
from onepassword_emulator.rfc3339 import TimestampError, format_ns, parse_ns
from onepassword_emulator.store import (
    CursorCodec,
    CursorRejected,
    CursorState,
    EventStream,
)

_PROFILE = AccountProfile(seed=1, name="acme", account_uuid="A" * 26, msp=False)


def _stream(stamps: list[int]) -> EventStream:
    return EventStream(StreamRenderer(_PROFILE, "signinattempts", 1), array("q", stamps))


def _model(stamps, position, *, start, horizon, retention, end, limit):  # noqa: PLR0913
    high = end if end is not None else 1 << 62
    owed = [
        index
        for index in range(position, len(stamps))
        if (max(start, retention) if index < horizon else retention) <= stamps[index] < high
    ]
    return owed[:limit], len(owed) > limit


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    stamps=st.lists(st.integers(0, 5000), min_size=0, max_size=1500).map(
        lambda values: sorted(values) if len(values) % 3 else values  # mostly in order
    ),
)
def test_select_matches_a_brute_force_model(data: st.DataObject, stamps: list[int]) -> None:
    late = data.draw(st.lists(st.integers(0, 5000), max_size=20))
    all_stamps = stamps + late
    stream = _stream(stamps)
    if late:
        stream.append(late)
    count = len(all_stamps)
    position = data.draw(st.integers(0, count))
    horizon = data.draw(st.integers(0, count))
    start = data.draw(st.integers(0, 5000))
    retention = data.draw(st.integers(0, 5000))
    end = data.draw(st.none() | st.integers(0, 5001))
    limit = data.draw(st.integers(1, 50))
    got = stream.select(
        position, start_ns=start, horizon=horizon, retention_ns=retention, end_ns=end, limit=limit
    )
    expected, more = _model(
        all_stamps,
        position,
        start=start,
        horizon=horizon,
        retention=retention,
        end=end,
        limit=limit,
    )
    assert got.positions == expected
    assert got.has_more is more
    assert got.next_position == (expected[-1] + 1 if more else count)


def test_late_events_are_found_after_the_in_order_run_passed_end_time() -> None:
    stream = _stream(list(range(0, 3000, 3)))
    stream.append([10, 20, 4000])  # two late events, one newer than end
    got = stream.select(0, start_ns=0, horizon=1000, retention_ns=0, end_ns=100, limit=1000)
    assert [stream.timestamp(i) for i in got.positions][-2:] == [10, 20]
    assert got.has_more is False


def test_cursor_round_trip_and_tampering() -> None:
    codec = CursorCodec(b"k" * 32)
    state = CursorState("v2/signinattempts", "acme", 12, 100, 5, 40, None)
    text = codec.encode(state)
    assert codec.decode(text) == state
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    flipped = text[:-3] + ("A" if text[-3] != "A" else "B") + text[-2:]
    for bad in (flipped, "", "!!!", text[:10], "aGVsbG8hIGlzIGl0IG1lIHlvdSBhcmUgbG9va2luZyBmb3IK"):
        with pytest.raises(CursorRejected):
            codec.decode(bad)
    with pytest.raises(CursorRejected):
        CursorCodec(b"other" * 8).decode(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-06-11T16:32:50-03:00", datetime(2021, 6, 11, 19, 32, 50, tzinfo=timezone.utc)),
        ("2021-06-11T19:32:50Z", datetime(2021, 6, 11, 19, 32, 50, tzinfo=timezone.utc)),
        ("2021-06-11T19:32:50.5+00:00", datetime(2021, 6, 11, 19, 32, 50, 500000, timezone.utc)),
        ("2024-02-29T00:00:00+05:30", datetime(2024, 2, 28, 18, 30, tzinfo=timezone.utc)),
    ],
)
def test_parse_accepts_rfc3339_with_z_or_offset(text: str, expected: datetime) -> None:
    assert parse_ns(text) == int(expected.timestamp()) * 10**9 + expected.microsecond * 1000


def test_parse_keeps_nanoseconds() -> None:
    assert parse_ns("2022-10-24T21:16:52.827288935Z") % 10**9 == 827288935


@pytest.mark.parametrize(
    "text",
    [
        "2021-06-11",
        "2021-06-11 19:32:50Z",
        "2021-06-11T19:32:50",
        "yesterday",
        "2021-02-30T00:00:00Z",
        "2021-13-01T00:00:00Z",
        "2021-06-11T25:00:00Z",
        "2021-06-11T19:32:50+0300",
        "",
    ],
)
def test_parse_rejects_anything_else(text: str) -> None:
    with pytest.raises(TimestampError):
        parse_ns(text)


def test_format_trims_trailing_zeros_like_go() -> None:
    base = parse_ns("2024-12-02T11:54:21Z")
    assert format_ns(base) == "2024-12-02T11:54:21Z"
    assert format_ns(base + 246_459_830) == "2024-12-02T11:54:21.24645983Z"
    assert format_ns(base + 70_000_000) == "2024-12-02T11:54:21.07Z"
    assert format_ns(base + 1) == "2024-12-02T11:54:21.000000001Z"


def test_account_spec_rejects_unknown_features() -> None:
    with pytest.raises(ValueError, match="unknown features"):
        AccountSpec("x", features=("signinattempts", "logins"))
