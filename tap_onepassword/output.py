"""Singer output with the least work per record, byte for byte what the SDK would write.

`SingerOutput`, the tap's message writer, encodes with the SDK's own msgspec encoder into one
buffer and hands it to stdout whenever a message other than RECORD goes out (a STATE, a
SCHEMA), a page was emitted, or the buffer passes 256 KiB, instead of one `write` plus `flush`
per message. Records therefore never reach a target after the STATE that covers them, and a crash
loses only records no STATE had committed yet. A record may come already encoded
(`EncodedRecord`, made by read-ahead's workers with `encode_record_into`); its line is then
copied, not encoded.

`StateOutput` writes STATE messages at the pace of a `StateCadence` (every few seconds, never
more than a tenth of the output, and at the end) and compares encoded bytes instead of keeping
a `copy.deepcopy` of the last state. `fastpath.py` puts both in place.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.singerlib import RecordMessage, StateMessage
from typing_extensions import override

from tap_onepassword.cadence import StateCadence

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from singer_sdk.helpers.types import Record
    from singer_sdk.singerlib.encoding.base import GenericSingerWriter
    from singer_sdk.singerlib.encoding.simple import Message

FLUSH_BYTES = 256 * 1024
"""Hand the buffer to stdout once it holds this much, even before the next STATE."""
_NEWLINE = ord("\n")
RECORD_SEPARATOR = _NEWLINE
"""What follows each record's JSON in a block of encoded records (`write_encoded_lines`)."""
_SEPARATOR_BYTES = bytes((RECORD_SEPARATOR,))


class SingerOutput(MsgSpecWriter):
    """Writes Singer messages with msgspec, in a few large writes instead of one per message."""

    def __init__(self) -> None:
        """Start with an empty buffer."""
        super().__init__()
        self._buffer = bytearray()
        self._handed_over = 0
        self._flushing = False
        self._deferred: Callable[[], None] | None = None
        # The bytes around a record's own JSON in its RECORD line, for the last
        # (stream, version, time_extracted): the same for every record of a page.
        self._frame_key: tuple[str, int | None, datetime] | None = None
        self._frame: tuple[bytes, bytes] = (b"", b"")
        self._between = b""
        """The end of one RECORD line and the start of the next, for the same frame."""

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

    @property
    def written(self) -> int:
        """Bytes of messages written so far (handed to stdout or buffered)."""
        return self._handed_over + len(self._buffer)

    def write_state_json(self, state_json: bytes) -> int:
        """Write a STATE message whose value is already encoded, and hand it to stdout.

        Args:
            state_json: The state's JSON, as the SDK's encoder makes it.

        Returns:
            Bytes of the STATE line.

        """
        before = len(self._buffer)
        self._buffer += b'{"type":"STATE","value":'
        self._buffer += state_json
        self._buffer += b"}\n"
        size = len(self._buffer) - before
        self.flush()
        if self._deferred is not None:
            self._run_deferred()
        return size

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

    def write_encoded_lines(
        self, stream: str, records_json: bytes, version: int | None, time_extracted: datetime
    ) -> None:
        """Write one RECORD message for each record of a block, in one step for the block.

        JSON text never holds a raw newline (strings escape it), so each newline of the block
        ends one record: replacing it with the end of one RECORD line and the start of the
        next makes every line at once, at the speed of a copy.

        Args:
            stream: The stream name.
            records_json: Records' JSON as `encode_record_into` made each, each followed by
                a newline (`RECORD_SEPARATOR`).
            version: The stream version, when the stream has one.
            time_extracted: When the records were extracted (aware).

        """
        if not records_json:
            return
        before, _ = self._frame_of(stream, version, time_extracted)
        buffer = self._buffer
        buffer += before
        buffer += records_json.replace(_SEPARATOR_BYTES, self._between)
        del buffer[-len(before) :]  # the start of a line after the last one
        self._record_written()

    def _frame_of(
        self, stream: str, version: int | None, time_extracted: datetime
    ) -> tuple[bytes, bytes]:
        """Return the bytes around a record's JSON in its RECORD line (kept for the last key)."""
        key = (stream, version, time_extracted)
        if key != self._frame_key:
            self._frame_key, self._frame = key, _record_frame(stream, version, time_extracted)
            self._between = self._frame[1] + self._frame[0]
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
            self._handed_over += len(self._buffer)
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
    and the partition's keys. Only `FastPathStream` may write it, and only when it takes the
    lean path (it writes `json`); anything else would write the stub, so it refuses.
    """

    __slots__ = ("json",)
    json: bytes | memoryview


class EncodedPage(dict[str, Any]):
    """The records of one prepared page, emitted as one item.

    It stands for `count` records whose JSON is `lines`, each followed by a newline (as
    `write_encoded_lines` takes them). The SDK sees one record, so its per-record steps run once per
    page. As a dict it holds only the partition's keys; like `EncodedRecord`, only
    `FastPathStream`'s lean path may write it, and that path counts the other `count - 1` records.
    """

    __slots__ = ("count", "lines")
    lines: bytes
    count: int


class StateOutput:
    """The SDK's STATE writer (write when the state changed), at the pace of a `StateCadence`.

    The SDK asks for a STATE after every page the tap emitted (and every 10,000 records, and at
    the end of each stream); each holds the state of every stream and account. This writer lets
    one out only when the cadence allows it (`cadence.py`), and always at the end
    (`write_final`). It leaves out a STATE equal to the last one written, as the SDK's does,
    comparing the encoded bytes instead of keeping a deep copy.
    """

    def __init__(self, message_writer: GenericSingerWriter[Any, Any]) -> None:
        """Write through `message_writer`, with no limit until `cadence` is set.

        Args:
            message_writer: The tap's message writer.

        """
        self._message_writer = message_writer
        self.cadence = StateCadence(0)
        self._last_json: bytes | None = None
        self.messages = 0
        """STATE messages written."""

    def write_state(self, state: dict[str, Any]) -> None:
        """Write a STATE message if the cadence allows and it differs from the last one.

        Args:
            state: The tap's whole state.

        """
        writer = self._message_writer
        written = writer.written if isinstance(writer, SingerOutput) else 0
        if self.cadence.due(written):
            self._write(state)

    def write_final(self, state: dict[str, Any]) -> None:
        """Write the run's last STATE message (unless it equals the last one written).

        Args:
            state: The tap's whole state.

        """
        self._write(state)

    def _write(self, state: dict[str, Any]) -> None:
        state_json = encoder.encode(state)
        if state_json == self._last_json:
            return
        self._last_json = state_json
        writer = self._message_writer
        if isinstance(writer, SingerOutput):
            size = writer.write_state_json(state_json)
            self.cadence.wrote(writer.written, size)
        else:
            writer.write_message(StateMessage(value=state))
            self.cadence.wrote(0, 0)
        self.messages += 1


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
