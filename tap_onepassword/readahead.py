"""Read-ahead: fetch the pages of the partitions the SDK emits later, while it emits this one.

The SDK syncs one stream after another and, within a stream, one account after another. Each
stream and account (a partition) pages in order, because each cursor comes from the previous
answer, so with 100 ms between a request and its answer one partition reaches about ten pages
a second, and every other partition waits its turn. When the first event partition starts,
`ReadAhead` starts paging every partition that follows it in the SDK's order on worker threads,
through the same network side (`EventStream.request_pages_ahead`: the token's request budget,
retries, the same checks of each body), and hands each partition's pages to the SDK side in
order when its turn comes. The requests, the pages, and so the records and state written are
those of a sequential run; only their timing changes.

The workers also do most of the CPU work per record while the SDK side waits on the network:
when records go out unchanged (the usual case), a worker shapes and encodes each page's
records (`PreparedPage`), and when the page's turn comes the SDK side only writes the lines.
Otherwise, pages that must wait keep their events as the JSON text the API sent (`HeldPage`)
and are parsed on the SDK side when their turn comes.

Memory stays flat. A prepared or held page takes about the memory of its text (a third of
that of parsed events) and holds nothing for the garbage collector to walk. The partition
being emitted keeps at most `CURRENT_PAGES` pages ready; all the others together hold at most
`max_bytes` of such pages, the nearest partitions first. A worker reserves room for a page
before asking for it, so a worker waiting for room holds nothing. An error a worker meets (a
rejected cursor, retries running out) waits in its partition's queue and is raised where a
sequential run raises it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from tap_onepassword.pages import HeldPage, Page, PreparedPage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from singer_sdk.helpers.types import Context

    from tap_onepassword.events import EventStream
    from tap_onepassword.pages import RequestBody

CURRENT_PAGES: Final = 4
"""Pages the partition being emitted may hold ready (it is drained while it fills)."""

BYTES_PER_EVENT: Final = 1024
"""Room reserved per event of `page_size` before a request (API events are 0.5 to 1 KB)."""

START_IN_FLIGHT: Final = 2
"""Pages in flight at once before the first answers tell how long answers take."""

_PAGES: Final = (Page, HeldPage, PreparedPage)

_END: Final = object()
"""Queued after a partition's last page (or its error)."""


@dataclass(eq=False)
class Partition:
    """One stream and account: where its pages start and what is buffered of them."""

    stream: EventStream
    context: Context
    first_body: RequestBody
    index: int
    queue: deque[Any] = field(default_factory=deque)
    """Pages in order, then perhaps an exception, then `_END`."""
    pages: int = 0
    """Pages in the queue, plus one while a request is out."""
    held: int = 0
    """Bytes of the queue's pages, plus the room reserved while a request is out."""
    taken: bool = False
    abandoned: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """(stream name, account name)."""
        return self.stream.name, self.context["account_name"]


class Pace:
    """How many pages to have in flight: enough to keep the network busy, and no more.

    While one page waits for its answer, the worker threads can work on the pages already
    answered: as many pages as fit in one round trip of CPU work, plus the one waiting, keep
    both busy. When answers come back faster than a page's CPU work, that is one page at a
    time. More would only add threads taking turns at the interpreter lock, and pages waiting
    in memory: with a fast local server, two pages in flight instead of one cost some 8% more
    CPU per record, and no less wall time.

    The CPU a page costs (reading, decoding, shaping, encoding) is averaged over the run. The
    round trip is the shortest of the last few: a wait for the answer grows when the server
    or this process is busy (an answer waits for the interpreter lock before its headers are
    read), and more pages in flight would only make it longer still.
    """

    SMOOTHING: Final = 0.2
    """Weight of the newest page in the CPU average."""

    ROUND_TRIPS: Final = 16
    """Round trips kept; the shortest of them counts."""

    def __init__(self, most: int) -> None:
        """Start with `START_IN_FLIGHT` pages in flight, at most `most`.

        Args:
            most: The most pages in flight (one per worker thread).

        """
        self.most = most
        self.wanted = min(START_IN_FLIGHT, most)
        self._round_trips: deque[float] = deque(maxlen=self.ROUND_TRIPS)
        self._cpu: float | None = None

    def measured(self, round_trip: float, cpu: float) -> None:
        """Count one page: seconds waiting for its answer, and CPU seconds its worker spent.

        Args:
            round_trip: From sending the request to the answer's headers.
            cpu: The worker thread's CPU time for the page.

        """
        self._round_trips.append(round_trip)
        if self._cpu is None:
            self._cpu = cpu
        else:
            self._cpu += self.SMOOTHING * (cpu - self._cpu)
        needed = math.floor(min(self._round_trips) / max(self._cpu, 1e-4)) + 1
        self.wanted = max(1, min(self.most, needed))


class ReadAhead:
    """Pages partitions ahead of the SDK on worker threads, in bounded buffers."""

    def __init__(
        self,
        partitions: list[tuple[EventStream, Context, RequestBody]],
        *,
        page_size: int,
        max_bytes: int,
        workers: int,
        round_trip: Callable[[], float] | None = None,
    ) -> None:
        """Plan the partitions, in the order the SDK will emit them, and start paging.

        Args:
            partitions: (stream, partition context, first request body), in sync order.
            page_size: Most events one page holds.
            max_bytes: Most page text held for the partitions not being emitted, together.
            workers: Most partitions paged at once.
            round_trip: Seconds the calling thread's last request waited for its answer; the
                pace of requests follows it (`Pace`). None: every worker, always.

        """
        self._partitions = [
            Partition(stream, context, body, index)
            for index, (stream, context, body) in enumerate(partitions)
        ]
        self._by_key = {partition.key: partition for partition in self._partitions}
        self._room = page_size * BYTES_PER_EVENT
        self._max_bytes = max(max_bytes, self._room)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._current = 0
        self._next_to_start = 0
        self._closed = False
        # Kept as they change, not summed over every partition on each check: with a
        # thousand accounts the room rule runs thousands of times a second.
        self._ahead_held = 0
        """Bytes held by the partitions after the current one."""
        self._waiting: set[Partition] = set()
        """Partitions whose worker waits for room (at most one per worker)."""
        self._most_workers = max(1, min(workers, len(self._partitions)))
        self._pace = Pace(self._most_workers)
        self._round_trip = round_trip
        if round_trip is None:
            self._pace.wanted = self._most_workers
        self._in_flight = 0
        """Pages requested and not yet queued, of every partition."""
        self._threads: list[threading.Thread] = []
        with self._lock:
            self._add_workers()

    # SDK side (the main thread) -----------------------------------------------------------

    def take(self, stream: EventStream, context: Context) -> Iterator[Page | PreparedPage] | None:
        """Hand over a planned partition's pages, in order; None when it was not planned.

        Taking a partition makes it the current one: earlier partitions are done with. A
        partition is handed over once; asked again, it is read one page at a time.

        Args:
            stream: The stream.
            context: The partition context.

        Returns:
            An iterator of its pages (raising what its worker met), or None.

        """
        partition = self._by_key.get((stream.name, context["account_name"]))
        if partition is None or partition.stream is not stream or partition.taken:
            return None
        with self._lock:
            partition.taken = True
            for earlier in self._partitions[self._current : partition.index]:
                self._abandon(earlier)
            for passed in self._partitions[self._current + 1 : partition.index + 1]:
                self._ahead_held -= passed.held  # no longer ahead of the current one
            self._current = partition.index
            self._changed.notify_all()
        return self._pages(partition)

    def _pages(self, partition: Partition) -> Iterator[Page | PreparedPage]:
        finished = False
        try:
            while True:
                with self._lock:
                    while not partition.queue:
                        self._changed.wait()
                    item = partition.queue.popleft()
                    if isinstance(item, _PAGES):
                        partition.pages -= 1
                        self._add_held(partition, -_text_size(item))
                        self._changed.notify_all()
                if item is _END:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item.parsed()
        finally:
            if not finished:
                with self._lock:
                    self._abandon(partition)

    def close(self) -> None:
        """Stop every worker after its request in flight, and drop what is buffered."""
        with self._lock:
            self._closed = True
            for partition in self._partitions:
                partition.queue.clear()
            self._changed.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=0.1)

    # Workers ----------------------------------------------------------------------------

    def _add_workers(self) -> None:
        """Under the lock: start threads up to the number of pages the pace wants in flight."""
        while not self._closed and len(self._threads) < min(self._pace.wanted, self._most_workers):
            thread = threading.Thread(
                target=self._work, name=f"read-ahead-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._closed or self._next_to_start >= len(self._partitions):
                    return
                partition = self._partitions[self._next_to_start]
                self._next_to_start += 1
            self._page_through(partition)

    def _page_through(self, partition: Partition) -> None:
        pages = partition.stream.request_pages_ahead(
            partition.context, partition.first_body, lambda: partition.index != self._current
        )
        try:
            while self._reserve(partition):
                cpu = time.thread_time()
                try:
                    page = next(pages)
                except StopIteration:
                    self._put(partition, _END)
                    return
                cpu = time.thread_time() - cpu
                timing = None if self._round_trip is None else (self._round_trip(), cpu)
                self._put(partition, page, timing=timing)
                if isinstance(page, PreparedPage) and page.error is not None:
                    # The SDK side stops at this page's error: asking further would spend
                    # the token's budget on requests a sequential run never sends.
                    self._put(partition, _END, reserved=False)
                    return
        except Exception as exc:  # noqa: BLE001 - raised on the SDK side, where it belongs
            self._put(partition, exc)
            self._put(partition, _END, reserved=False)
        finally:
            pages.close()

    def _may_fetch(self, partition: Partition) -> bool:
        """Room rule, under the lock: the current partition by its pages, others by bytes."""
        if partition.index == self._current:
            return partition.pages < CURRENT_PAGES
        if partition.index < self._current:
            return False
        if self._in_flight >= self._pace.wanted:
            return False  # enough pages on their way for the pace the answers come at
        if any(self._current < other.index < partition.index for other in self._waiting):
            return False  # the nearer partitions get room first
        return self._ahead_held + self._room <= self._max_bytes

    def _add_held(self, partition: Partition, size: int) -> None:
        """Under the lock: count `size` more bytes held by `partition` (negative: fewer)."""
        partition.held += size
        if partition.index > self._current:
            self._ahead_held += size

    def _reserve(self, partition: Partition) -> bool:
        """Wait for room for one more page; False when paging should stop."""
        with self._lock:
            self._waiting.add(partition)
            try:
                while not (self._closed or partition.abandoned or self._may_fetch(partition)):
                    self._changed.wait()
            finally:
                self._waiting.discard(partition)
            if self._closed or partition.abandoned:
                return False
            partition.pages += 1
            self._in_flight += 1
            self._add_held(partition, self._room)
            return True

    def _put(
        self,
        partition: Partition,
        item: object,
        *,
        reserved: bool = True,
        timing: tuple[float, float] | None = None,
    ) -> None:
        with self._lock:
            if reserved:
                partition.pages -= 1
                self._in_flight -= 1
                self._add_held(partition, -self._room)
            if timing is not None:
                self._pace.measured(*timing)
                self._add_workers()
            if not (self._closed or partition.abandoned):
                if isinstance(item, _PAGES):
                    partition.pages += 1
                    self._add_held(partition, _text_size(item))
                partition.queue.append(item)
            self._changed.notify_all()

    def _abandon(self, partition: Partition) -> None:
        """Under the lock: nobody will read this partition's pages; stop paging it."""
        partition.abandoned = True
        for item in partition.queue:
            if isinstance(item, _PAGES):
                partition.pages -= 1
                self._add_held(partition, -_text_size(item))
        partition.queue.clear()
        self._changed.notify_all()


def _text_size(page: Page | HeldPage | PreparedPage) -> int:
    """Count the bytes a page holds against the shared room: its text or its records' JSON.

    Parsed pages belong to the partition being emitted, bounded by its page count instead.
    """
    if isinstance(page, PreparedPage):
        return page.held_bytes
    return len(page.items) if isinstance(page, HeldPage) else 0
