"""The SDK internals the lean record path relies on are where, and what, it expects.

singer-sdk is pinned (`~=0.54.9`); an upgrade that moves or changes any of these fails here,
loudly, before it could change the tap's output (tap_onepassword/output.py).
"""

from __future__ import annotations

import base64
import inspect
import json
from typing import Any

import msgspec
from singer_sdk import Stream, Tap
from singer_sdk.contrib import msgspec as sdk_msgspec
from singer_sdk.singerlib import StateMessage

from tap_onepassword.output import LeanRecordOutput, StateOutput
from tap_onepassword.tap import TapOnePassword


def _parameters(function: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


def _calls(function: Any) -> set[str]:
    return set(function.__code__.co_names)


def _tap() -> TapOnePassword:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"aud": ["127.0.0.1:9"], "1password.com/fts": ["auditevents"], "iat": 1}
    token = f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"
    return TapOnePassword(config={"token": token, "base_url": "http://127.0.0.1:9"})


def test_the_overridden_private_hooks_keep_their_signatures() -> None:
    positional, keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
    assert _parameters(Stream._write_record_message) == [
        ("self", positional),
        ("record", positional),
    ]
    assert _parameters(Stream._increment_stream_state) == [
        ("self", positional),
        ("latest_record", positional),
        ("context", keyword),
    ]
    assert _parameters(Stream._write_state_message) == [("self", positional)]
    assert _parameters(Stream._finalize_state) == [("self", positional), ("state", positional)]
    assert _parameters(Stream._process_record) == [
        ("self", positional),
        ("record", positional),
        ("child_context", positional),
        ("partition_context", positional),
    ]


def test_the_record_loop_still_goes_through_them_for_every_record() -> None:
    loop = _calls(Stream._sync_records)
    assert {
        "get_records",
        "post_process",
        "_process_record",
        "_write_record_message",
        "_increment_stream_state",
        "_write_state_message",
        "_finalize_state",
    } <= loop
    # Per record, besides child streams, the SDK's _process_record only adds context keys.
    assert _calls(Stream._process_record) == {
        "items",
        "generate_child_contexts",
        "stream_maps",
        "get_filter_result",
        "_sync_children",
        "copy",
    }
    assert {"_generate_record_messages", "write_message", "is_flushed"} <= _calls(
        Stream._write_record_message
    )


def test_the_sdk_record_path_does_only_what_the_lean_path_rules_out() -> None:
    # The lean path writes a record unchanged when nothing below could change it: pruning
    # (every property selected), conformance (level NONE) and stream maps (the identity).
    assert _calls(Stream._generate_record_messages) == {
        "effective_schema",
        "pop_deselected_record_properties",
        "schema",
        "mask",
        "conform_record_data_types",
        "name",
        "TYPE_CONFORMANCE_LEVEL",
        "logger",
        "stream_maps",
        "transform",
        "singer",
        "RecordMessage",
        "stream_alias",
        "_stream_version",
        "utc_now",
    }


def test_the_stream_attributes_read_are_there() -> None:
    tap = _tap()
    stream = tap.streams["audit_events"]
    assert isinstance(stream, LeanRecordOutput)
    assert stream._tap is tap
    assert stream._stream_version is None
    assert stream.ABORT_AT_RECORD_COUNT is None


def test_a_sorted_unchecked_stream_keeps_the_latest_records_bookmark() -> None:
    # Why deferring the bookmark to the next state write changes nothing: the SDK keeps the
    # last record's value, whatever came before it.
    stream = _tap().streams["audit_events"]
    context = {"account_name": "default"}
    for stamp in ("2025-01-03T00:00:00Z", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"):
        Stream._increment_stream_state(stream, {"timestamp": stamp}, context=context)
    state = stream.get_context_state(context)
    assert state["replication_key_value"] == "2025-01-02T00:00:00Z"
    assert "progress_markers" not in state


def test_the_msgspec_writer_encodes_to_dict_with_the_shared_encoder() -> None:
    assert isinstance(sdk_msgspec.encoder, msgspec.json.Encoder)
    assert "to_dict" in _calls(sdk_msgspec.MsgSpecWriter.serialize_message)
    assert "encoder" in _calls(sdk_msgspec.serialize_jsonl)


def test_a_state_message_is_its_type_and_value_nulls_inside_kept() -> None:
    # SingerOutput writes {"type", "value"} for a STATE without to_dict()'s deep copy.
    value = {"bookmarks": {"s": {"partitions": [{"context": {"a": 1}, "cursor": None}]}}}
    assert StateMessage(value=value).to_dict() == {"type": "STATE", "value": value}


class _PlainTap(Tap):
    name = "plain"
    config_jsonschema: dict[str, Any] = {"type": "object", "properties": {}}  # noqa: RUF012

    def discover_streams(self) -> list[Stream]:
        return []


def test_the_state_writer_the_tap_replaces_is_where_and_what_it_was() -> None:
    sdk_writer = _PlainTap(config={})._state_writer
    # Same job: write when the state changed, keep a copy of the last one written.
    assert {"write_message", "StateMessage", "_last_emitted_state", "deepcopy"} <= _calls(
        type(sdk_writer).write_state
    )
    assert "_state_writer" in _calls(Tap.__init__)
    assert "_state_writer" in _calls(Tap.state_writer.fget)
    assert {"state_writer", "write_state"} <= _calls(Stream._write_state_message)
    assert {"_state_writer", "write_state"} <= _calls(Tap.sync_all)
    tap = _tap()
    assert isinstance(tap._state_writer, StateOutput)
    assert tap.state_writer is tap._state_writer
