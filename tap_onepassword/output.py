"""Singer output with the least work per record, byte for byte what the SDK would write.

A profile of a plain SDK run of this tap puts most of its CPU per record in work the tap does
not need: conforming values that are already JSON types (see `EventStream`), pruning
properties when every property is selected, a `RecordMessage` object per record, a bookmark
lookup per record that the tap overwrites after each page anyway, and one `write` plus `flush`
system call per message.

`SingerOutput`, the tap's message writer, encodes with the SDK's own msgspec encoder into one
buffer and hands it to stdout whenever a message other than RECORD goes out (the STATE after
each page, SCHEMA) or the buffer passes 256 KiB. Records therefore never reach a target after
the STATE that covers them, and a crash loses only records no STATE had committed yet.

`LeanRecordOutput`, mixed into the tap's streams, writes a record straight into that buffer
when nothing on the SDK's path could change it (every property selected, no stream map or
flattening, no type conformance) and leaves everything else to the SDK. On that path a record
may also come already encoded (`EncodedRecord`: read-ahead's workers encode records while the
SDK side waits on the network); its line is then copied, not encoded. The records between two
STATE messages, that is one page, share one `time_extracted` (the SDK reads the clock per
record). It also defers the SDK's per-record bookmark update to the next moment state is
written or finalised: for a stream that is sorted and not checked, the SDK simply keeps the
latest record's value, so only the last record before each write matters. And without child
streams, it skips the child-context work the SDK does per record.

`StateOutput` replaces the SDK's STATE writer (`Tap._state_writer`) with one that keeps its
copy of the last state by a msgspec round trip instead of `copy.deepcopy`.

These overrides touch private SDK members (`Stream._write_record_message`,
`Stream._increment_stream_state`, `Stream._write_state_message`, `Stream._finalize_state`,
`Stream._process_record`, `Stream._stream_version`, `Stream._tap`, `Tap._state_writer`);
the SDK is pinned (`singer-sdk~=0.54.9`) and `tests/perf/test_sdk_private_members.py` fails
loudly if any of them moves or changes meaning.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from singer_sdk import Stream
from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage, StateMessage
from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk.helpers.types import Context, Record
    from singer_sdk.singerlib.encoding.base import GenericSingerWriter
    from singer_sdk.singerlib.encoding.simple import Message

FLUSH_BYTES = 256 * 1024
"""Hand the buffer to stdout once it holds this much, even before the next STATE."""
_NEWLINE = ord("\n")


class SingerOutput(MsgSpecWriter):
    """Writes Singer messages with msgspec, in a few large writes instead of one per message."""

    def __init__(self) -> None:
        """Start with an empty buffer."""
        super().__init__()
        self._buffer = bytearray()
        self._flushing = False
        self._deferred: Callable[[], None] | None = None
        # The bytes around a record's own JSON in its RECORD line, for the last
        # (stream, version, time_extracted): the same for every record of a page.
        self._frame_key: tuple[str, int | None, datetime] | None = None
        self._frame: tuple[bytes, bytes] = (b"", b"")

    def when_idle(self, action: Callable[[], None]) -> None:
        """Run `action` now, or as soon as the write in progress is complete.

        A signal handler runs between any two bytecodes of the main thread, so possibly in
        the middle of a write; the SDK's SIGTERM handler writes a last STATE there. Appended
        between a record and its newline it would tear both lines; during a flush it would
        resize the buffer being handed to stdout (BufferError) or re-enter stdout's writer.
        The tap's handler goes through here, so the STATE follows whole lines. (A buffer that
        does not end in a newline is a record still being written; checking that costs the
        per-record path nothing.)

        Args:
            action: What to do once no write is under way.

        """
        if self._flushing or (self._buffer and self._buffer[-1] != _NEWLINE):
            self._deferred = action
        else:
            action()

    def _run_deferred(self) -> None:
        action, self._deferred = self._deferred, None
        if action is not None:
            action()

    @override
    def write_message(self, message: Message) -> None:
        if type(message) is StateMessage and message.value is not None:
            # What to_dict() returns, without its deep copy (dataclasses.asdict) of the whole
            # state: a STATE goes out after every page, and the state grows with accounts.
            content: dict[str, Any] = {"type": message.type, "value": message.value}
        else:
            content = message.to_dict()
        encoder.encode_into(content, self._buffer, -1)
        self._buffer += b"\n"
        if not isinstance(message, RecordMessage) or len(self._buffer) >= FLUSH_BYTES:
            self.flush()
        if self._deferred is not None:
            self._run_deferred()

    def write_record(
        self, stream: str, record: Record, version: int | None, time_extracted: datetime
    ) -> None:
        """Write one RECORD message, exactly as `RecordMessage.to_dict()` would shape it.

        Args:
            stream: The stream name.
            record: The record.
            version: The stream version, when the stream has one.
            time_extracted: When the record was extracted (aware).

        """
        before, after = self._frame_of(stream, version, time_extracted)
        buffer = self._buffer
        buffer += before
        encoder.encode_into(record, buffer, -1)
        buffer += after
        self._record_written()

    def write_encoded(
        self,
        stream: str,
        record_json: bytes | memoryview,
        version: int | None,
        time_extracted: datetime,
    ) -> None:
        """Write one RECORD message whose record is already encoded (`encode_record_into`).

        Args:
            stream: The stream name.
            record_json: The record's JSON, as `encode_record_into` made it.
            version: The stream version, when the stream has one.
            time_extracted: When the record was extracted (aware).

        """
        before, after = self._frame_of(stream, version, time_extracted)
        buffer = self._buffer
        buffer += before
        buffer += record_json
        buffer += after
        self._record_written()

    def _frame_of(
        self, stream: str, version: int | None, time_extracted: datetime
    ) -> tuple[bytes, bytes]:
        """Return the bytes around a record's JSON in its RECORD line (kept for the last key)."""
        key = (stream, version, time_extracted)
        if key != self._frame_key:
            self._frame_key, self._frame = key, _record_frame(stream, version, time_extracted)
        return self._frame

    def _record_written(self) -> None:
        """Hand a full buffer to stdout, and run what waited for the record to be whole."""
        if len(self._buffer) >= FLUSH_BYTES:
            self.flush()
        if self._deferred is not None:
            self._run_deferred()

    def flush(self) -> None:
        """Hand everything buffered to stdout (looked up now, so redirections are honoured)."""
        if not self._buffer:
            return
        self._flushing = True
        try:
            out = sys.stdout.buffer
            view = memoryview(self._buffer)
            while view:
                # A raw (unbuffered) stdout may take only part of a large write.
                written = out.write(view)
                view = view[written if written is not None else len(view) :]
            view.release()
            out.flush()
            self._buffer.clear()
        finally:
            self._flushing = False
        if self._deferred is not None:
            self._run_deferred()


def encode_record_into(record: Record, buffer: bytearray) -> None:
    """Append a record's JSON, as `SingerOutput.write_record` puts it in its RECORD line.

    Args:
        record: The record.
        buffer: Where to append it.

    """
    encoder.encode_into(record, buffer, -1)


class EncodedRecord(dict[str, Any]):
    """A record whose JSON is already made (`json`, by `encode_record_into`).

    As a dict it holds only what the SDK reads of a record on its way out: the replication key
    and the partition's keys. Only `LeanRecordOutput` may write it, and only when it takes the
    lean path (it writes `json`); anything else would write the stub, so it refuses.
    """

    __slots__ = ("json",)
    json: bytes | memoryview


class StateOutput:
    """The SDK's STATE writer (write when the state changed), without its deep copy.

    The SDK keeps a `copy.deepcopy` of each state it writes, to leave out a STATE equal to the
    last one; with a STATE after every page that copy is the SDK side's largest cost per page.
    A state is JSON (it goes out as JSON), so a msgspec round trip copies it as faithfully, ten
    times faster. Anything not JSON in a state would only compare unequal and be written again.
    """

    def __init__(self, message_writer: GenericSingerWriter[Any, Any]) -> None:
        """Write through `message_writer`.

        Args:
            message_writer: The tap's message writer.

        """
        self._message_writer = message_writer
        self._last_emitted_state: dict[str, Any] | None = None

    def write_state(self, state: dict[str, Any]) -> None:
        """Write a STATE message unless it equals the last one written.

        Args:
            state: The tap's whole state.

        """
        if self._last_emitted_state is None or state != self._last_emitted_state:
            self._message_writer.write_message(StateMessage(value=state))
            self._last_emitted_state = _state_decoder.decode(encoder.encode(state))


_state_decoder = msgspec.json.Decoder(dict[str, Any])


def _record_frame(
    stream: str, version: int | None, time_extracted: datetime
) -> tuple[bytes, bytes]:
    """Split a RECORD line, as `RecordMessage.to_dict()` and the SDK's encoder make it.

    A record's JSON between the two halves is its RECORD line, byte for byte.

    Args:
        stream: The stream name.
        version: The stream version, or None.
        time_extracted: The extraction time (aware).

    Returns:
        The bytes before the record, and after it (newline included).

    """
    message = RecordMessage(
        stream=stream, record={}, version=version, time_extracted=time_extracted
    ).to_dict()
    message["record"] = None
    line = encoder.encode(message) + b"\n"
    # JSON strings escape their quotes, so the key below occurs exactly once: as the key.
    before, found, after = line.partition(b'"record":null')
    if not found:  # pragma: no cover - the SDK's to_dict always has "record"
        msg = "a RECORD message without a record"
        raise RuntimeError(msg)
    return before + b'"record":', after


class LeanRecordOutput(Stream):
    """Stream mix-in: the SDK's record and bookmark bookkeeping without per-record waste.

    Subclasses keep the SDK's behaviour wherever the shortcut's conditions do not hold, and
    `LEAN_OUTPUT = False` turns the shortcut off entirely (the tests compare both paths).
    """

    LEAN_OUTPUT: ClassVar[bool] = True
    """Write records through `SingerOutput.write_record` when nothing would change them."""

    _unsettled_bookmark: tuple[Record, Context | None] | None = None
    _extracted_at: datetime | None = None

    @cached_property
    def _lean_writer(self) -> SingerOutput | None:
        """The writer, when a record may skip the SDK's per-record steps; else None.

        Decided once per run: selection, stream maps and conformance do not change while
        streams sync. Not with batch files or child streams: records then go elsewhere
        than `_write_record_message`, whole.
        """
        writer = self._tap.message_writer
        if not isinstance(writer, SingerOutput):
            return None
        maps = self.stream_maps
        lean = (
            self.LEAN_OUTPUT
            and self.get_batch_config(self.config) is None
            and not self.child_streams
            and self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE
            and all(self.mask.values())
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and maps[0].stream_alias == self.name
        )
        return writer if lean else None

    @property
    def writes_records_unchanged(self) -> bool:
        """Whether records go out exactly as the stream yields them (the lean path).

        Then a stream may yield `EncodedRecord`s. Decided once per run, on first use: ask on
        the main thread before other threads rely on it.
        """
        return self._lean_writer is not None

    @cached_property
    def _deferred_bookmark_key(self) -> str | None:
        """The replication key, when the SDK keeps only the latest record's value for it.

        That is a sorted, unchecked stream without custom state partitioning; else None.
        """
        defer = (
            self.LEAN_OUTPUT
            and self.is_sorted
            and not self.check_sorted
            and self.state_partitioning_keys is None
        )
        return self.replication_key if defer else None

    @override
    def _write_record_message(self, record: Record) -> None:
        writer = self._lean_writer
        if writer is None:
            if type(record) is EncodedRecord:
                msg = f"{self.name}: an encoded record reached the SDK's record writer"
                raise RuntimeError(msg)
            super()._write_record_message(record)
            return
        # The SDK's path would prune nothing, conform nothing and map nothing: the same line.
        # The records between two STATE messages (a page) share one extraction time, and the
        # first of them marks state as not flushed (only a state write sets it back).
        extracted_at = self._extracted_at
        if extracted_at is None:
            extracted_at = self._extracted_at = datetime.now(timezone.utc)
            self.state_manager.is_flushed = False
        if type(record) is EncodedRecord:
            writer.write_encoded(self.name, record.json, self._stream_version, extracted_at)
        else:
            writer.write_record(self.name, record, self._stream_version, extracted_at)

    @override
    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        key = self._deferred_bookmark_key
        if key is not None and latest_record.get(key) is not None:
            self._unsettled_bookmark = (latest_record, context)
            return
        if self.replication_key and latest_record.get(self.replication_key) is None:
            return  # an event without a readable timestamp does not move the bookmark
        self.settle_bookmark()
        super()._increment_stream_state(latest_record, context=context)

    def settle_bookmark(self) -> None:
        """Apply the deferred bookmark update, as the SDK would have after the last record.

        Call before reading or changing the partition's bookmark outside the SDK.
        """
        pending = self._unsettled_bookmark
        if pending is not None:
            self._unsettled_bookmark = None
            super()._increment_stream_state(pending[0], context=pending[1])

    @override
    def _write_state_message(self) -> None:
        self.settle_bookmark()
        self._extracted_at = None
        super()._write_state_message()
        # Also after a STATE the SDK left out as unchanged: the stream may be done, and its
        # records must not wait for another stream's STATE.
        writer = self._tap.message_writer
        if isinstance(writer, SingerOutput):
            writer.flush()

    @override
    def _process_record(
        self,
        record: Record,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        if self.child_streams:
            super()._process_record(record, child_context, partition_context)
            return
        if type(record) is EncodedRecord:
            return  # made with the partition's keys
        # Without child streams the SDK would build and copy a child context per record only
        # to find nobody to sync with it; what remains is adding the partition's keys.
        for key, value in (partition_context or {}).items():
            if key not in record:
                record[key] = value

    @override
    def _finalize_state(self, state: dict[str, Any] | None = None) -> None:
        self.settle_bookmark()
        super()._finalize_state(state)
