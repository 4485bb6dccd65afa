"""Event streams in ingestion order, and the signed cursors that walk them.

A stream keeps only an ``array`` of timestamps (nanoseconds) indexed by ingestion position;
the event itself is rendered on demand by :class:`~.data.StreamRenderer`. Positions never
change once assigned, so a cursor is just "the next position to look at" plus the query it
belongs to. Because late events (timestamps older than events ingested before them) are
appended at the end, a cursor re-polled after ``has_more: false`` sees them, exactly the
eventual-consistency behaviour that breaks collectors which resume by timestamp.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import random
import threading
from array import array
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onepassword_emulator.data import StreamRenderer

_BLOCK = 256
"""Positions per block of the prefix-maximum index used to skip old events quickly."""
_NO_END = (1 << 63) - 1


class CursorRejected(ValueError):  # noqa: N818 - names the event, as the style guide asks
    """A cursor is forged, from another endpoint or account, or signed with an old secret."""


@dataclass(frozen=True)
class CursorState:
    """What a cursor remembers: the query it continues and where to look next.

    ``horizon`` is the stream length when the query began: older events are held to
    ``start_ns``, newer ones (late arrivals included) are not.
    """

    endpoint: str
    account: str
    position: int
    limit: int
    start_ns: int
    horizon: int
    end_ns: int | None


class CursorCodec:
    """Encodes cursor states as opaque base64url strings signed with a per-process secret."""

    def __init__(self, secret: bytes) -> None:
        """Sign with ``secret``; a new codec with another secret rejects older cursors."""
        self._secret = secret

    def encode(self, state: CursorState) -> str:
        """Return the opaque cursor string for ``state``."""
        return self.seal(list(astuple(state)))

    def decode(self, cursor: str) -> CursorState:
        """Verify and decode a cursor string.

        Raises:
            CursorRejected: for anything this codec did not sign.

        """
        try:
            return CursorState(*self.unseal(cursor))
        except TypeError as exc:
            msg = "invalid cursor"
            raise CursorRejected(msg) from exc

    def seal(self, values: list[object]) -> str:
        """Sign a list of JSON values into an opaque base64url string (cursors, page tokens)."""
        payload = json.dumps(values, separators=(",", ":")).encode()
        signature = hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(signature + payload).rstrip(b"=").decode()

    def unseal(self, token: str) -> list[Any]:
        """Verify a string made by ``seal`` and return its values.

        Raises:
            CursorRejected: for anything this codec did not sign.

        """
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError) as exc:
            msg = "invalid cursor"
            raise CursorRejected(msg) from exc
        signature, payload = raw[:16], raw[16:]
        expected = hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]
        if len(signature) != 16 or not hmac.compare_digest(signature, expected):  # noqa: PLR2004
            msg = "invalid cursor"
            raise CursorRejected(msg)
        try:
            values = json.loads(payload)
        except ValueError as exc:
            msg = "invalid cursor"
            raise CursorRejected(msg) from exc
        if not isinstance(values, list):
            msg = "invalid cursor"
            raise CursorRejected(msg)
        return values


INSERTION_DELAY_MS = (50, 3000)
"""An event of the initial history is inserted this many milliseconds after it happened."""
_MILLI = 1_000_000
_SECOND = 1_000_000_000


def _insert_batch(inserted: array[int], count: int, instant: int) -> None:
    """Append a batch inserted at one instant, never before the last insertion."""
    at = max(instant, inserted[-1] if inserted else 0)
    inserted.extend([at] * count)


def initial_insertions(key: int, timestamps: array[int]) -> array[int]:
    """Return the insertion times of a stream's initial history (whole milliseconds).

    Each event is inserted a deterministic 50 ms to 3 s after it happened, and never before
    the event ingested before it: a late event (older than one ingested before it) takes its
    predecessor's insertion time. About one event in four is ingested in one batch with the
    event before it, which then shares its (later) insertion instant; one in five is inserted
    on a whole second.
    """
    low, high = INSERTION_DELAY_MS
    span = high - low
    draw = random.Random(key ^ 0x1A5E27).getrandbits  # noqa: S311 - synthetic data
    out: array[int] = array("q")
    previous = -_NO_END
    for stamp in timestamps:
        bits = draw(32)
        at = (stamp // _MILLI + 1 + low + (bits & 0xFFFF) % span) * _MILLI
        if (bits >> 16) % 5 == 0:  # one in five inserted on a whole second
            at = -(-at // _SECOND) * _SECOND
        previous = max(previous, at)
        if out and (bits >> 24) % 4 == 0:
            out[-1] = previous  # ingested in one batch with this event
        out.append(previous)
    return out


@dataclass(frozen=True)
class Selection:
    """The positions one page serves and where the next request continues."""

    positions: list[int]
    next_position: int
    has_more: bool


class EventStream:
    """One account's events of one feature: timestamps in ingestion order plus a renderer.

    A stream served on v3 as well (audit events) also keeps each event's insertion time: when
    the service ingested it, never earlier than the insertion before it, so ingestion order is
    insertion-time order. An event of the initial history is inserted a few seconds after it
    happened (a late one: together with the event ingested before it); events added later are
    inserted at the instant they are added, all of one batch at the same instant.
    """

    def __init__(
        self, renderer: StreamRenderer, timestamps: array[int], *, insertion: bool = False
    ) -> None:
        """Take ownership of ``timestamps`` (ingestion order) and index them.

        ``insertion`` keeps insertion times too (see the class docstring), worked out when
        first asked for: a stream never read on v3 costs nothing more.
        """
        self.renderer = renderer
        self._stamps: array[int] = array("q")
        self._block_max: array[int] = array("q")
        self._late: list[int] = []
        self._late_set: set[int] = set()
        self._running_max = -_NO_END
        self._lock = threading.Lock()
        self._extend(timestamps)
        self._keeps_insertion = insertion
        self._initial = len(timestamps)
        self._inserted: array[int] | None = None
        self._batches: list[tuple[int, int]] = []
        """(events, instant) of each batch added before the insertion times were worked out."""

    def __len__(self) -> int:
        """Return how many events were ever ingested (retention not applied)."""
        return len(self._stamps)

    def _extend(self, timestamps: array[int] | list[int]) -> None:
        stamps, block_max, late = self._stamps, self._block_max, self._late
        running = self._running_max
        position = len(stamps)
        stamps.extend(timestamps)
        for stamp in timestamps:
            if stamp < running:
                late.append(position)
            else:
                running = stamp
            if position % _BLOCK == 0:
                block_max.append(running)
            else:
                block_max[-1] = running
            position += 1
        self._running_max = running
        self._late_set.update(late[len(self._late_set) :])

    def append(self, timestamps: list[int], inserted_ns: int | None = None) -> range:
        """Ingest events with these timestamps now; return their positions.

        ``inserted_ns`` is when they are inserted (a stream keeping insertion times needs it):
        all at one instant, in whole milliseconds, never before the last insertion nor before
        the newest of them happened.
        """
        with self._lock:
            first = len(self._stamps)
            self._extend(timestamps)
            if self._keeps_insertion:
                if inserted_ns is None:
                    msg = "this stream keeps insertion times: say when the events are inserted"
                    raise ValueError(msg)
                newest = (max(timestamps) // _MILLI + 1) * _MILLI
                instant = max(inserted_ns - inserted_ns % _MILLI, newest)
                if self._inserted is None:
                    self._batches.append((len(timestamps), instant))
                else:
                    _insert_batch(self._inserted, len(timestamps), instant)
            return range(first, len(self._stamps))

    @property
    def keeps_insertion_times(self) -> bool:
        """Whether the stream is served on v3 (it knows when each event was inserted)."""
        return self._keeps_insertion

    def _insertions(self) -> array[int]:
        inserted = self._inserted
        if inserted is not None:
            return inserted
        if not self._keeps_insertion:
            msg = "this stream keeps no insertion times"
            raise ValueError(msg)
        with self._lock:
            if self._inserted is None:
                initial = self._stamps[: self._initial]
                worked_out = initial_insertions(self.renderer.key, initial)
                for count, instant in self._batches:
                    _insert_batch(worked_out, count, instant)
                self._inserted = worked_out
            return self._inserted

    def inserted(self, position: int) -> int:
        """Return the insertion time (nanoseconds) of the event at ``position``."""
        return self._insertions()[position]

    def first_inserted_after(self, instant_ns: int) -> int:
        """Return the first position inserted strictly after ``instant_ns`` (or the length)."""
        inserted = self._insertions()
        with self._lock:
            return bisect.bisect_right(inserted, instant_ns)

    def timestamp(self, position: int) -> int:
        """Return the stored timestamp of the event at ``position``."""
        return self._stamps[position]

    def timestamps(self) -> array[int]:
        """Return a copy of every stored timestamp in ingestion order."""
        with self._lock:
            return array("q", self._stamps)

    @property
    def newest_ns(self) -> int:
        """Return the largest timestamp ingested so far."""
        return self._running_max

    def select(  # noqa: PLR0913 - the query a cursor carries, spelled out
        self,
        position: int,
        *,
        start_ns: int,
        horizon: int,
        retention_ns: int,
        end_ns: int | None,
        limit: int,
    ) -> Selection:
        """Pick up to ``limit`` positions from ``position`` on that the query still owes.

        Events ingested before the query began (positions below ``horizon``) must lie in
        ``[start_ns, end_ns)``; events ingested since only need to be before ``end_ns``, so a
        late event is served even when its timestamp predates ``start_ns``. Nothing older than
        ``retention_ns`` is served. Whole blocks of history older than the lower bound are
        skipped; once an in-order event passes ``end_ns`` only the few late events are checked.
        """
        high = _NO_END if end_ns is None else end_ns
        history_low = max(start_ns, retention_ns)
        with self._lock:
            stamps = self._stamps
            count = len(stamps)
            # Skip blocks whose newest event is older than the bound that applies to them.
            history_skip = bisect.bisect_left(self._block_max, history_low) * _BLOCK
            recent_skip = bisect.bisect_left(self._block_max, retention_ns) * _BLOCK
            index = max(position, min(history_skip, max(horizon, recent_skip)))
            found: list[int] = []
            want = limit + 1
            late_set = self._late_set
            while index < count:
                stamp = stamps[index]
                if stamp >= high:
                    if index not in late_set:
                        # In-order events only get newer: the rest can only be late arrivals.
                        tail = self._late[bisect.bisect_right(self._late, index) :]
                        found.extend(
                            late
                            for late in tail
                            if (history_low if late < horizon else retention_ns)
                            <= stamps[late]
                            < high
                        )
                        break
                elif stamp >= (history_low if index < horizon else retention_ns):
                    found.append(index)
                    if len(found) == want:
                        break
                index += 1
        if len(found) > limit:
            return Selection(found[:limit], found[limit - 1] + 1, has_more=True)
        return Selection(found, count, has_more=False)
