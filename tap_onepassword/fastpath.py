"""The fast path: every use of the Singer SDK's private members, in this one module.

A plain SDK run of this tap spends most of its CPU per record on work the tap does not need:
conforming values that are already JSON types, pruning properties when every property is
selected, a `RecordMessage` per record, a bookmark lookup per record that the tap overwrites
after each page anyway, a child-context copy per record without child streams, and a deep copy
of the whole state per STATE message. The overrides below skip exactly that work, and only
when it could not change the output; the tests compare the output of both paths.

`FastPathStream`, the base of the tap's streams, writes a record straight into the `SingerOutput`
buffer when nothing on the SDK's path could change it (every property selected, no stream map or
flattening, no type conformance, no child streams), possibly already encoded by a read-ahead worker
(`EncodedRecord`), or a whole prepared page of them at once (`EncodedPage`: the SDK's per-record
loop then runs once per page, and the stream counts the page's other records). The records of one
page share one `time_extracted`. It defers the SDK's per-record bookmark update to the next moment
state is written or finalised (for a sorted, unchecked stream the SDK keeps only the latest
record's value). `LEAN_OUTPUT = False` turns all of that off.

`FastPathTap`, the base of the tap, replaces the SDK's STATE writer with `StateOutput` (paced
by `state_interval`), runs the sync inside the tap's `sync_tuning`, writes the run's last STATE
and flushes the output after it (an override of the `sync_all` the SDK marks final), and lets a
write in progress finish before the SDK's SIGTERM handler runs, writing the last STATE first.

singer-sdk is pinned (`~=0.54.9`); `tests/test_fastpath_contract.py` pins every private name
used here and fails if any other module of the package uses one.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Final

from singer_sdk import Stream, Tap
from singer_sdk.helpers._state import get_state_partitions_list
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.streams._state import StreamStateManager
from typing_extensions import override

from tap_onepassword.cadence import StateCadence
from tap_onepassword.output import EncodedPage, EncodedRecord, SingerOutput, StateOutput

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from types import FrameType

    from singer_sdk.helpers.types import Context, Record


class FastPathTap(Tap):
    """Tap base: a cheaper STATE writer, a tuned sync, whole lines before a SIGTERM's STATE."""

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401 - the SDK's keyword arguments
        """Create the tap (the SDK's arguments), then put in the tap's own STATE writer.

        Args:
            kwargs: The SDK's `Tap` arguments.

        """
        super().__init__(**kwargs)
        self._state_writer = StateOutput(self.message_writer)  # type: ignore[assignment]

    def sync_tuning(self) -> AbstractContextManager[None]:
        """Return what surrounds the sync (the tap tunes the process there); nothing here.

        Returns:
            A context manager the sync runs in.

        """
        return contextlib.nullcontext()

    def state_interval(self) -> float:
        """Return the least seconds between two STATE messages (see cadence.py); 0 here.

        Returns:
            Seconds.

        """
        return 0.0

    @property
    def state_output(self) -> StateOutput:
        """The STATE writer (see output.StateOutput)."""
        writer = self._state_writer
        if not isinstance(writer, StateOutput):  # pragma: no cover - set in __init__
            raise TypeError(writer)
        return writer

    @override  # type: ignore[misc] # `sync_all` is final only in the SDK's type hints
    def sync_all(self) -> None:
        state_writer = self.state_output
        try:
            with self.sync_tuning():
                state_writer.cadence = StateCadence(self.state_interval())
                super().sync_all()
        except BaseException:
            # The last STATE of a failed run too (it holds only pages emitted whole), unless
            # the failure is the output itself.
            with contextlib.suppress(OSError):
                state_writer.write_final(dict(self.state))
            raise
        else:
            state_writer.write_final(dict(self.state))
        finally:
            if isinstance(self.message_writer, SingerOutput):
                self.message_writer.flush()

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # SIGTERM/SIGINT: the SDK writes a last STATE and exits, from inside whatever the main
        # thread was doing, often a write to a slow target. Let that write finish first, so
        # the target reads whole lines.
        # The SDK's handler writes through `write_state`, which the cadence may hold back:
        # the last STATE goes out first, whatever the cadence.
        writer = self.message_writer

        def terminate() -> None:
            try:
                self.state_output.write_final(dict(self.state))
            finally:
                super(FastPathTap, self)._handle_termination(signum, frame)

        if isinstance(writer, SingerOutput):
            writer.when_idle(terminate)
        else:
            terminate()


class IndexedStateManager(StreamStateManager):
    """The SDK's state manager, finding a partition's state by an index instead of a scan.

    The SDK looks a partition's state up in the stream's list of partitions, comparing each
    entry's context, four times per partition and run: with a thousand accounts, four million
    comparisons per stream. The index is rebuilt when the list is replaced or grows (the SDK
    appends new partitions); a found entry is checked against the context before it is used.
    """

    _index_key: tuple[int, int] | None = None
    _index: dict[str, dict[str, Any]] | None = None

    @override
    def get_context_state(self, context: Context | None) -> dict[str, Any]:
        partition_context = self.get_state_partition_context(context)
        partitions = get_state_partitions_list(self.tap_state, self.stream_name)
        name = (partition_context or {}).get("account_name")
        if partitions is None or not isinstance(name, str) or len(partition_context or {}) != 1:
            return super().get_context_state(context)
        if self._index_key != (id(partitions), len(partitions)) or self._index is None:
            self._index_key = (id(partitions), len(partitions))
            self._index = {}
            for entry in partitions:
                stored = entry.get("context")
                if isinstance(stored, dict) and isinstance(stored.get("account_name"), str):
                    self._index.setdefault(stored["account_name"], entry)
        found = self._index.get(name)
        if found is not None and found.get("context") == partition_context:
            return found
        return super().get_context_state(context)


_ENCODED: Final = (EncodedRecord, EncodedPage)


class FastPathStream(Stream):
    """Stream mix-in: the SDK's record and bookmark bookkeeping without per-record waste.

    Subclasses keep the SDK's behaviour wherever the shortcut's conditions do not hold, and
    `LEAN_OUTPUT = False` turns the shortcut off entirely (the tests compare both paths).
    """

    LEAN_OUTPUT: ClassVar[bool] = True
    """Write records through `SingerOutput.write_record` when nothing would change them."""

    BOOKMARK_PER_RECORD: ClassVar[bool] = True
    """Let the SDK move the bookmark (`replication_key_value`) after records; False when the
    stream sets it itself, only for what it has committed."""

    _unsettled_bookmark: tuple[Record, Context | None] | None = None
    _extracted_at: datetime | None = None

    @property
    @override
    def state_manager(self) -> StreamStateManager:
        if self._state_manager is None:
            self._state_manager = IndexedStateManager(
                tap_name=self.tap_name,
                stream_name=self.name,
                tap_state=self._tap_state,
                state_partitioning_keys=self.state_partitioning_keys,
                is_sorted=self.is_sorted,
                check_sorted=self.check_sorted,
            )
        return self._state_manager

    @cached_property
    def _lean_writer(self) -> SingerOutput | None:
        """The writer, when a record may skip the SDK's per-record steps; else None.

        Decided once per run: selection, stream maps and conformance do not change while
        streams sync. Not with child streams: records then also go to them, whole. (Batch
        files never reach here: the settings refuse `batch_config`.)
        """
        writer = self._tap.message_writer
        if not isinstance(writer, SingerOutput):
            return None
        maps = self.stream_maps
        lean = (
            self.LEAN_OUTPUT
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

    @property
    def writes_whole_pages(self) -> bool:
        """Whether the stream may yield a prepared page's records as one `EncodedPage`.

        Only on the lean path, for a stream that moves its bookmark itself (a page item has
        no replication key) and outside dry runs (which count records against a limit).
        """
        return (
            self._lean_writer is not None
            and not self.BOOKMARK_PER_RECORD
            and self.ABORT_AT_RECORD_COUNT is None
        )

    def count_records(self, count: int) -> None:
        """Count `count` records the SDK did not count: it counts an `EncodedPage` as one.

        Args:
            count: Records written beyond those the SDK counted.

        Raises:
            NotImplementedError: A stream that yields `EncodedPage`s must count.

        """
        raise NotImplementedError

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
            if type(record) in _ENCODED:
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
        if type(record) is EncodedPage:
            writer.write_encoded_lines(self.name, record.lines, self._stream_version, extracted_at)
            self.count_records(record.count - 1)  # the SDK counts this item as one record
        elif type(record) is EncodedRecord:
            writer.write_encoded(self.name, record.json, self._stream_version, extracted_at)
        else:
            writer.write_record(self.name, record, self._stream_version, extracted_at)

    @override
    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        if not self.BOOKMARK_PER_RECORD:
            return
        key = self._deferred_bookmark_key
        if key is not None and latest_record.get(key) is not None:
            self._unsettled_bookmark = (latest_record, context)
            return
        if self.replication_key and latest_record.get(self.replication_key) is None:
            return  # an event without a readable timestamp does not move the bookmark
        self.settle_bookmark()
        super()._increment_stream_state(latest_record, context=context)

    def write_state_now(self) -> None:
        """Offer a STATE even if no record was written since the last one (cadence.py)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

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
        if type(record) in _ENCODED:
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
