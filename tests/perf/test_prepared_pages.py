"""A prepared page (read-ahead's records, shaped and encoded by a worker) writes, line for line,
what `emit` writes of the page itself, and fails where it fails."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tap_onepassword.errors import ApiResponseError
from tap_onepassword.events import EventStream
from tap_onepassword.fastpath import FastPathStream
from tap_onepassword.output import EncodedPage, EncodedRecord, SingerOutput, encode_record_into
from tap_onepassword.pages import MalformedEvents, Page, PreparedPage, decode_page
from tap_onepassword.progress import Progress
from tap_onepassword.streams import EVENT_FEATURES
from tap_onepassword.tap import TapOnePassword

if TYPE_CHECKING:
    from onepassword_emulator import Emulator

PAYLOADS = Path(__file__).parents[1] / "tap" / "fixtures"
STREAM_OF = {feature: name for name, feature in EVENT_FEATURES.items()}
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def tap_for(emulator: Emulator, **settings: Any) -> TapOnePassword:
    account = emulator.accounts[0]
    return TapOnePassword(
        config={"token": account.token, "base_url": emulator.base_url, **settings},
        parse_env_config=False,
    )


def fixture_pages() -> list[tuple[str, str, bytes]]:
    """(api version, feature, body) of every page of the quirky fixture payloads."""
    pages = []
    for version in ("v1", "v2"):
        payloads = json.loads((PAYLOADS / f"payloads-{version}.json").read_text())
        for feature in STREAM_OF:
            pages += [
                (version, feature, json.dumps(page).encode()) for page in payloads.get(feature, [])
            ]
    return pages


def encode_record(record: dict[str, Any]) -> bytes:
    buffer = bytearray()
    encode_record_into(record, buffer)
    return bytes(buffer)


def written(write: Any) -> bytes:
    """The bytes `write(writer)` puts in a fresh SingerOutput's buffer."""
    writer = SingerOutput()
    write(writer)
    return bytes(writer._buffer)


def emitted(stream: EventStream, pages: list[Page | PreparedPage]) -> tuple[list[Any], Any]:
    """Drive `emit` over `pages`: what it yielded, and what it raised (or None)."""
    state: dict[str, Any] = {}
    progress = Progress(stream.logger, stream.name, "default")
    out: list[Any] = []
    try:
        out.extend(
            stream.emit({"account_name": "default"}, state, progress, pages, MalformedEvents())
        )
    except ApiResponseError as exc:
        return out, str(exc)
    return out, None


@pytest.mark.parametrize(("version", "feature", "body"), fixture_pages())
def test_a_prepared_page_writes_the_record_lines_of_its_parsed_page(
    emulator: Emulator, version: str, feature: str, body: bytes
) -> None:
    stream = tap_for(emulator, api_version=version).streams[STREAM_OF[feature]]
    assert isinstance(stream, EventStream)
    prepared = stream.event_records.prepare(decode_page(body), "default")
    plain = list(stream.event_records.accepted(decode_page(body), "default", MalformedEvents()))
    assert prepared.error is None
    assert prepared.events == len(decode_page(body).items)
    assert prepared.timestamps == [timestamp for timestamp, _ in plain]
    assert prepared.newest == max((t for t in prepared.timestamps if t), default=None)
    # Byte for byte the RECORD lines the writer makes of the parsed records: one by one, and
    # the whole page at once.
    lines = written(lambda w: [w.write_record(stream.name, r, None, WHEN) for _, r in plain])
    assert lines.count(b"\n") == len(plain)
    assert (
        written(
            lambda w: [
                w.write_encoded(stream.name, j, None, WHEN) for _, j in prepared.record_json()
            ]
        )
        == lines
    )
    assert written(lambda w: w.write_encoded_lines(stream.name, prepared.text, None, WHEN)) == lines
    # What emit yields for it: the whole page as one item...
    assert stream.writes_whole_pages
    records, error = emitted(stream, [prepared])
    assert error is None
    if plain:
        (page,) = records
        assert type(page) is EncodedPage
        assert (page.count, page.lines, dict(page)) == (
            len(plain),
            b"".join(encode_record(record) + b"\n" for _, record in plain),
            {"account_name": "default"},
        )
    else:
        assert records == []
    # ... or record by record, each carrying what the SDK reads of a record before writing it.
    stream.event_records.whole_pages = False
    records, error = emitted(stream, [prepared])
    assert error is None
    assert [(r["timestamp"], r["account_name"], r.json) for r in records] == [
        (timestamp, "default", encode_record(record)) for timestamp, record in plain
    ]


def test_end_date_and_a_broken_event_end_a_prepared_page_where_emit_ends_its_page(
    emulator: Emulator,
) -> None:
    # strict_events: an event without a uuid ends the run (by default it gets a surrogate).
    tap = tap_for(emulator, end_date="2024-06-01T00:00:00Z", strict_events=True)
    stream = tap.streams["sign_in_attempts"]
    assert isinstance(stream, EventStream)
    items = [
        {"uuid": "A", "timestamp": "2024-05-31T23:59:59.999999999Z"},
        {"uuid": "B", "timestamp": "2024-06-01T00:00:00Z"},  # end_date is exclusive
        {"uuid": "C", "timestamp": "2024-05-01T00:00:00+02:00", "unknown_field": 1},
        {"timestamp": "2024-05-02T00:00:00Z"},  # no uuid: the run ends here
        {"uuid": "E", "timestamp": "2024-05-03T00:00:00Z"},
    ]
    body = json.dumps({"cursor": "next", "has_more": True, "items": items}).encode()
    prepared = stream.event_records.prepare(decode_page(body), "default")
    assert prepared.timestamps == [
        "2024-05-31T23:59:59.999999999Z",
        "2024-04-30T22:00:00.000000000Z",
    ]
    assert isinstance(prepared.error, ApiResponseError)
    plain_records, plain_error = emitted(stream, [decode_page(body)])
    assert "an event has no uuid" in str(plain_error)
    assert len(plain_records) == 2
    (page,), error = emitted(stream, [prepared])  # whole: the records before the error
    assert error == plain_error
    assert page.lines == b"".join(encode_record(r) + b"\n" for r in plain_records)
    stream.event_records.whole_pages = False
    records, error = emitted(stream, [prepared])  # one by one
    assert error == plain_error
    assert [r.json for r in records] == [encode_record(r) for r in plain_records]
    assert all(b"unknown_field" not in r.json for r in records)


def test_prepared_pages_take_about_the_memory_of_their_text(emulator: Emulator) -> None:
    stream = tap_for(emulator).streams["audit_events"]
    assert isinstance(stream, EventStream)
    account = emulator.accounts[0]
    body = requests.post(
        f"{emulator.base_url}/api/v2/auditevents",
        json={"limit": 200, "start_time": "2000-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=10,
    ).content
    prepared = stream.event_records.prepare(decode_page(body), "default")
    assert len(prepared.ends) == 200
    assert 0.8 * len(body) < prepared.held_bytes < 2 * len(body)


@pytest.mark.parametrize("kind", [EncodedRecord, EncodedPage])
def test_an_encoded_record_never_reaches_the_sdk_record_writer(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, kind: type[dict[str, Any]]
) -> None:
    monkeypatch.setattr(FastPathStream, "LEAN_OUTPUT", False)
    stream = tap_for(emulator).event_streams[0]
    assert not stream.writes_records_unchanged
    assert not stream.writes_whole_pages
    record = kind(account_name="default")
    with pytest.raises(RuntimeError, match="an encoded record reached the SDK's record writer"):
        stream._write_record_message(record)
