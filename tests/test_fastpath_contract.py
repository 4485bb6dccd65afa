"""The fast path's contract with the SDK: each private name it uses, and only it.

singer-sdk is pinned (`~=0.54.9`); an upgrade that moves or changes any private member the fast
path relies on fails here, loudly, before it could change the tap's output. And no module of
the package but `tap_onepassword/fastpath.py` may touch a private SDK name, so an upgrade is
one module to re-check.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any, ClassVar

import msgspec
from singer_sdk import RESTStream, Stream, Tap
from singer_sdk.contrib import msgspec as sdk_msgspec
from singer_sdk.singerlib import StateMessage
from singer_sdk.streams._state import StreamStateManager

import tap_onepassword
from tap_onepassword.fastpath import FastPathStream, FastPathTap, IndexedStateManager
from tap_onepassword.output import StateOutput
from tap_onepassword.tap import TapOnePassword
from tests.support.tokens import mint_token


def _parameters(function: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


def _calls(function: Any) -> set[str]:
    return set(function.__code__.co_names)


def _tap() -> TapOnePassword:
    token = mint_token(["127.0.0.1:9"], features=["auditevents"])
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
    assert isinstance(stream, FastPathStream)
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
    config_jsonschema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    def discover_streams(self) -> list[Stream]:
        return []


def test_the_state_writer_the_tap_replaces_is_where_and_what_it_was() -> None:
    sdk_writer = _PlainTap(config={})._state_writer
    # Same job: write when the state changed, keep a copy of the last one written.
    assert {"write_message", "StateMessage", "_last_emitted_state", "deepcopy"} <= _calls(
        type(sdk_writer).write_state
    )
    assert "_state_writer" in _calls(Tap.__init__)
    assert "_state_writer" in _calls(Tap.state_writer.fget)  # type: ignore[attr-defined]
    assert {"state_writer", "write_state"} <= _calls(Stream._write_state_message)
    assert {"_state_writer", "write_state"} <= _calls(Tap.sync_all)
    tap = _tap()
    assert isinstance(tap._state_writer, StateOutput)
    assert tap.state_writer is tap._state_writer


def test_the_termination_hook_the_tap_overrides_is_still_there() -> None:
    # If it moved, the override would silently stop guarding the last STATE's whole lines.
    assert list(inspect.signature(Tap._handle_termination).parameters) == [
        "self",
        "signum",
        "frame",
    ]
    assert "_handle_termination" in FastPathTap.__dict__
    assert issubclass(TapOnePassword, FastPathTap)


def test_the_state_message_writer_and_its_flushed_flag_are_still_there() -> None:
    # The tap checkpoints after each page, records or not, through these two.
    assert callable(getattr(Stream, "_write_state_message", None))
    stream = _tap().streams["audit_events"]
    assert stream.state_manager.is_flushed is True


# Every private SDK name the fast path uses; the scan below keeps them in fastpath.py.
PINNED = {
    "_write_record_message",
    "_increment_stream_state",
    "_write_state_message",
    "_process_record",
    "_finalize_state",
    "_handle_termination",
    "_tap",
    "_stream_version",
    "_state_writer",
    "_state_manager",
    "_tap_state",
    "singer_sdk.helpers._state:_state",  # get_state_partitions_list
    "singer_sdk.streams._state:_state",  # StreamStateManager
    "is_flushed",  # the state manager's flag
    "sync_all",  # final in the SDK: overriding it is the fast path's business
}
PACKAGE = Path(tap_onepassword.__file__).parent
FAST_PATH = PACKAGE / "fastpath.py"


def _sdk_private_names() -> set[str]:
    """Private members of the SDK classes the package builds on."""
    names: set[str] = set()
    for base in (RESTStream, Tap, sdk_msgspec.MsgSpecWriter):
        for cls in base.__mro__:
            if not cls.__module__.startswith("singer_sdk"):
                continue
            names |= set(vars(cls))
            # Instance attributes: what the class's methods assign to `self._...`.
            module = inspect.getmodule(cls)
            assert module is not None
            for node in ast.walk(ast.parse(inspect.getsource(module))):
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _private_uses(path: Path, names: set[str]) -> set[str]:
    """SDK private names a module touches: attributes, overrides, private SDK modules."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in names:
            found.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            found.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            found.add(node.value)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("singer_sdk")
        ):
            private = [part for part in node.module.split(".") if part.startswith("_")]
            private += [a.name for a in node.names if a.name.startswith("_")]
            found.update(f"{node.module}:{name}" for name in private)
    return found


def test_the_pinned_names_are_sdk_members_and_the_fast_path_uses_each() -> None:
    sdk = _sdk_private_names()
    assert {n for n in PINNED if n.startswith("_")} <= sdk
    assert callable(Tap.sync_all)
    assert _private_uses(FAST_PATH, sdk | PINNED) == PINNED


def test_no_other_module_of_the_package_touches_a_private_sdk_name() -> None:
    names = _sdk_private_names() | PINNED
    modules = sorted(PACKAGE.rglob("*.py"))
    assert FAST_PATH in modules
    elsewhere = {
        path.relative_to(PACKAGE).as_posix(): uses
        for path in modules
        if path != FAST_PATH and (uses := _private_uses(path, names))
    }
    assert elsewhere == {}


def test_the_state_manager_the_fast_path_makes_is_made_as_the_sdk_makes_it() -> None:
    assert set(inspect.signature(StreamStateManager.__init__).parameters) == {
        "self",
        "stream_name",
        "tap_state",
        "is_sorted",
        "check_sorted",
        "tap_name",
        "state_partitioning_keys",
    }
    assert {"_state_manager", "StreamStateManager", "_tap_state"} <= _calls(
        Stream.state_manager.fget  # type: ignore[attr-defined]
    )
    assert _parameters(StreamStateManager.get_context_state) == [
        ("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("context", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]


def test_the_indexed_state_manager_finds_and_creates_what_the_sdk_finds_and_creates() -> None:
    def state() -> dict[str, Any]:
        partitions = [{"context": {"account_name": f"a{n}"}, "cursor": f"c{n}"} for n in range(50)]
        partitions.insert(7, {"context": {"account_name": "a3", "other": "x"}, "cursor": "odd"})
        return {"bookmarks": {"s": {"partitions": partitions}}}

    mine, theirs = state(), state()
    indexed = IndexedStateManager(stream_name="s", tap_state=mine)  # type: ignore[arg-type]
    plain = StreamStateManager(stream_name="s", tap_state=theirs)  # type: ignore[arg-type]
    for name in ["a0", "a3", "a49", "new", "a3", "new", "a20"]:
        got = indexed.get_context_state({"account_name": name})
        want = plain.get_context_state({"account_name": name})
        assert got == want
        got["seen"] = want["seen"] = True  # writable: the same entry both ways
    assert mine == theirs
    odd = {"account_name": "a3", "other": "x"}
    assert indexed.get_context_state(odd) == plain.get_context_state(odd)
    assert isinstance(_tap().streams["audit_events"].state_manager, IndexedStateManager)
