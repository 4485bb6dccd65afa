"""The lean record path writes exactly what the SDK's own path writes, with less work per record."""

from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stdout
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage

from tap_onepassword.events import EventStream
from tap_onepassword.fastpath import FastPathStream
from tap_onepassword.output import SingerOutput, StateOutput
from tap_onepassword.pages import MalformedEvents
from tap_onepassword.streams import EVENT_STREAMS
from tap_onepassword.tap import TapOnePassword
from tests.support.compare import comparable, config_for, final_state, fixed_start
from tests.support.runs import run_tap
from tests.support.tokens import mint_token

if TYPE_CHECKING:
    from onepassword_emulator import Emulator

PAYLOADS = Path(__file__).parents[1] / "tap" / "fixtures"
EVENTS = 2 * 3 * 700 + 2 * 700  # acme and globex read 3 streams, initech 2


def use_sdk_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record through the SDK's own steps: pruning, RECURSIVE conformance, maps."""
    monkeypatch.setattr(FastPathStream, "LEAN_OUTPUT", False)
    monkeypatch.setattr(EventStream, "TYPE_CONFORMANCE_LEVEL", TypeConformanceLevel.RECURSIVE)


@pytest.fixture
def lean_records_written(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the streams of every record that took the lean path, in order."""
    written: list[str] = []
    for method in ("write_record", "write_encoded"):  # encoded: prepared by read-ahead
        real = getattr(SingerOutput, method)

        def note(self: SingerOutput, stream: str, *args: Any, real: Any = real) -> None:
            written.append(stream)
            real(self, stream, *args)

        monkeypatch.setattr(SingerOutput, method, note)
    real_lines = SingerOutput.write_encoded_lines

    def note_lines(self: SingerOutput, stream: str, lines: bytes, *args: Any) -> None:
        written.extend([stream] * lines.count(b"\n"))  # a whole prepared page
        real_lines(self, stream, lines, *args)

    monkeypatch.setattr(SingerOutput, "write_encoded_lines", note_lines)
    return written


@pytest.fixture
def whole_pages_written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many records each `EncodedPage` written held, in order."""
    held: list[int] = []
    real = SingerOutput.write_encoded_lines

    def note(self: SingerOutput, stream: str, lines: bytes, *args: Any) -> None:
        held.append(lines.count(b"\n"))
        real(self, stream, lines, *args)

    monkeypatch.setattr(SingerOutput, "write_encoded_lines", note)
    return held


def test_the_lean_path_writes_every_message_the_sdk_path_writes(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    lean_records_written: list[str],
    whole_pages_written: list[int],
) -> None:
    # Pages of 100 (interval 0: every STATE goes out), prepared ahead and written whole.
    config = config_for(
        emulator, page_size=100, start_date=fixed_start(emulator), state_interval_seconds=0
    )
    lean = run_tap(config)
    assert len(lean_records_written) == EVENTS
    assert sum(whole_pages_written) == EVENTS  # every page went out whole
    assert len(whole_pages_written) == EVENTS // 100
    with monkeypatch.context() as sdk:
        use_sdk_path(sdk)
        written_before = len(lean_records_written)
        plain = run_tap(config)
        assert len(lean_records_written) == written_before  # the SDK path really ran
    assert comparable(lean) == comparable(plain)
    assert sum(m["type"] == "RECORD" for m in lean) == EVENTS + 3  # and introspection

    # An incremental run from that state, with new and late events, the same both ways.
    emulator.add_events("acme", "auditevents", 130)
    emulator.add_events("globex", "signinattempts", 40, late=True)
    lean_next = run_tap(config, state=final_state(lean))
    with monkeypatch.context() as sdk:
        use_sdk_path(sdk)
        plain_next = run_tap(config, state=final_state(plain))
    assert comparable(lean_next) == comparable(plain_next)
    assert sum(m["type"] == "RECORD" for m in lean_next) == 130 + 40 + 3


def test_record_by_record_the_lean_path_checkpoints_where_the_sdk_path_does(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    lean_records_written: list[str],
    whole_pages_written: list[int],
) -> None:
    # The SDK also checkpoints every 150 records, in the middle of pages of 100. A page
    # written whole has no middle (and such a STATE would hold nothing the page's own STATE
    # does not), so this compares the record-by-record lean path with the SDK's.
    monkeypatch.setattr(EventStream, "STATE_MSG_FREQUENCY", 150)
    monkeypatch.setattr(FastPathStream, "writes_whole_pages", property(lambda _: False))
    config = config_for(
        emulator, page_size=100, start_date=fixed_start(emulator), state_interval_seconds=0
    )
    lean = run_tap(config)
    assert len(lean_records_written) == EVENTS
    assert whole_pages_written == []
    with monkeypatch.context() as sdk:
        use_sdk_path(sdk)
        plain = run_tap(config)
    assert comparable(lean) == comparable(plain)
    # Mid-page checkpoints happened (holding the last whole page's cursor and bookmark).
    mid_page = [m for m in lean if m["type"] == "STATE"]
    assert len(mid_page) > len(lean) // 150 // 2


def _catalog_without(config: dict[str, Any], stream: str, field: str) -> dict[str, Any]:
    catalog = TapOnePassword(config=config).catalog_dict
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == stream:
            for item in entry["metadata"]:
                if item["breadcrumb"] == ["properties", field]:
                    item["metadata"]["selected"] = False
    return catalog


def test_a_deselected_property_takes_the_sdk_path_and_is_left_out(
    emulator: Emulator, lean_records_written: list[str]
) -> None:
    config = config_for(emulator)
    messages = run_tap(config, catalog=_catalog_without(config, "sign_in_attempts", "client"))
    records = [m for m in messages if m["type"] == "RECORD"]
    signins = [m["record"] for m in records if m["stream"] == "sign_in_attempts"]
    assert len(signins) == 3 * 700
    assert all("client" not in record for record in signins)
    assert "sign_in_attempts" not in lean_records_written
    assert "audit_events" in lean_records_written  # the other streams stay lean


def test_a_stream_map_takes_the_sdk_path_and_applies(
    emulator: Emulator, lean_records_written: list[str]
) -> None:
    config = config_for(emulator, stream_maps={"audit_events": {"aux_info": "__NULL__"}})
    messages = run_tap(config)
    records = [m for m in messages if m["type"] == "RECORD"]
    audit = [m["record"] for m in records if m["stream"] == "audit_events"]
    assert len(audit) == 3 * 700
    assert all("aux_info" not in record for record in audit)
    assert "audit_events" not in lean_records_written
    assert "item_usages" in lean_records_written


def _walk(schema: dict[str, Any], path: str) -> list[str]:
    """Places where RECURSIVE conformance could change decoded JSON: none are allowed."""
    problems = []
    for name, prop in schema.get("properties", {}).items():
        where = f"{path}.{name}"
        types = prop.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        if types and set(types) <= {"boolean", "null"}:
            problems.append(f"{where}: boolean-only (conformance turns 0/1 into bools)")
        if "properties" in prop:
            if prop.get("additionalProperties") is not True:
                problems.append(f"{where}: unknown nested keys would be dropped")
            problems += _walk(prop, where)
        if isinstance(prop.get("items"), dict):
            problems += _walk({"properties": {"[]": prop["items"]}}, where)
    return problems


@pytest.mark.parametrize("stream_class", EVENT_STREAMS, ids=lambda s: s.name)
def test_conformance_would_change_nothing_in_an_event_schema(stream_class: Any) -> None:
    assert _walk(stream_class.schema, stream_class.name) == []


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_recursive_conformance_leaves_real_shaped_payloads_unchanged(version: str) -> None:
    payloads = json.loads((PAYLOADS / f"payloads-{version}.json").read_text())
    tap = TapOnePassword(
        config={"token": mint_token(["127.0.0.1:9"]), "base_url": "http://127.0.0.1:9"}
    )
    checked = 0
    for stream in tap.event_streams:
        stream.TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.RECURSIVE
        for page in payloads.get(stream.feature, []):
            for item in page["items"]:
                record = stream.event_records.shape(
                    copy.deepcopy(item), "default", MalformedEvents()
                )
                (message,) = stream._generate_record_messages(copy.deepcopy(record))
                assert message.record == record
                checked += 1
    assert checked == sum(
        len(page["items"]) for stream in EVENT_STREAMS for page in payloads.get(stream.feature, [])
    )


def _messages() -> list[Any]:
    when = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    record = {"uuid": "A", "timestamp": "2025-05-06T07:08:09.000000001Z", "n": {"x": [1, 2.5]}}
    return [
        SchemaMessage("s", {"type": "object"}, ["uuid"], ["timestamp"]),
        RecordMessage(stream="s", record=record, time_extracted=when),
        RecordMessage(stream="s", record=record, version=7, time_extracted=when),
        StateMessage(
            value={
                "bookmarks": {
                    "s": {
                        "partitions": [
                            {"context": {"account_name": "a"}, "cursor": None, "n": [1, 2.5]},
                        ],
                        "replication_key_signpost": "2025-05-06T07:08:09.123456+00:00",
                    }
                }
            }
        ),
    ]


def test_the_writer_writes_the_bytes_the_sdks_msgspec_writer_writes() -> None:
    expected = b"".join(bytes(MsgSpecWriter().format_message(m)) for m in _messages())
    by_message, by_record = io.BytesIO(), io.BytesIO()
    writer = SingerOutput()
    with redirect_stdout(io.TextIOWrapper(by_message)):
        for message in _messages():
            writer.write_message(message)
        writer.flush()
        assert by_message.getvalue() == expected
    with redirect_stdout(io.TextIOWrapper(by_record)):
        for message in _messages():
            if isinstance(message, RecordMessage):
                assert message.time_extracted is not None
                writer.write_record(
                    message.stream, message.record, message.version, message.time_extracted
                )
            else:
                writer.write_message(message)
        assert by_record.getvalue() == expected


class _Trickle(io.RawIOBase):
    """A raw stdout that takes at most 7 bytes per write, as a pipe may."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: Any) -> int:
        taken = bytes(chunk[:7])
        self.data += taken
        return len(taken)


def test_records_wait_for_the_next_state_and_partial_writes_are_finished() -> None:
    raw = _Trickle()
    stdout = io.TextIOWrapper(raw, write_through=True)  # type: ignore[type-var]  # stdout.buffer is the trickle itself
    writer = SingerOutput()
    _, first, second, state = _messages()
    with redirect_stdout(stdout):
        writer.write_message(first)
        writer.write_message(second)
        assert raw.data == b""  # records alone stay in the buffer
        writer.write_message(state)
    expected = b"".join(bytes(MsgSpecWriter().format_message(m)) for m in (first, second, state))
    assert bytes(raw.data) == expected


def test_the_state_writer_leaves_out_only_a_state_equal_to_the_last_written() -> None:
    sent: list[dict[str, Any]] = []

    class Collect(SingerOutput):
        def write_state_json(self, state_json: bytes) -> int:
            sent.append(json.loads(state_json))
            return len(state_json)

    writer = StateOutput(Collect())
    state: dict[str, Any] = {"bookmarks": {"s": {"partitions": [{"cursor": "a", "n": None}]}}}
    writer.write_state(state)
    writer.write_state(state)  # unchanged: left out
    state["bookmarks"]["s"]["partitions"][0]["cursor"] = "b"  # changed in place, as the SDK does
    writer.write_state(state)
    writer.write_state({"bookmarks": {"s": {"partitions": [{"cursor": "b", "n": None}]}}})
    assert [s["bookmarks"]["s"]["partitions"][0]["cursor"] for s in sent] == ["a", "b"]
