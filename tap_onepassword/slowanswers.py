"""Requests that wait long for their answer, told while they wait.

A request blocks its thread until the answer comes or `request_timeout` passes (a minute by
default), and nothing else in the tap speaks for it meanwhile. The API client marks each
request out (`SlowAnswers.out`); while the sync runs, a watcher thread tells every request
that has waited `NOTICE_EVERY` seconds or more, again every `NOTICE_EVERY` seconds, so the log
is never silent longer than that.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from typing import TYPE_CHECKING

from tap_onepassword.ratebudget import NOTICE_EVERY

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator

LOOK_EVERY = 1.0
"""Seconds between the watcher's looks at the requests out."""


class SlowAnswers:
    """The requests out now, and the watcher that tells those waiting long."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        request_timeout: float,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Start with no request out.

        Args:
            logger: Where the lines go (INFO).
            request_timeout: The setting, named in the lines.
            clock: Seconds of real time, even where tests warp `time.monotonic` (a socket
                waits in real time).

        """
        self.logger = logger
        self.request_timeout = request_timeout
        self._clock = clock
        self._out: dict[int, tuple[str, float, float]] = {}
        """Request number: (what, sent at, last told at)."""
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def out(self, what: str) -> Iterator[None]:
        """Mark a request out while the block runs.

        Args:
            what: The request, as lines name it: `<stream>, account '<name>': POST <path>`.

        Yields:
            Nothing; the request is sent and read inside.

        """
        number = next(self._numbers)
        now = self._clock()
        with self._lock:
            self._out[number] = (what, now, now)
        try:
            yield
        finally:
            with self._lock:
                del self._out[number]

    def tell_due(self) -> None:
        """Tell each request out whose answer was awaited `NOTICE_EVERY` seconds since last told."""
        now = self._clock()
        due: list[tuple[str, float]] = []
        with self._lock:
            for number, (what, sent, told) in self._out.items():
                if now - told >= NOTICE_EVERY:
                    self._out[number] = (what, sent, now)
                    due.append((what, now - sent))
        for what, waited in due:
            self.logger.info(
                "%s: still waiting for the answer after %.0f s (request_timeout %g s)",
                what,
                waited,
                self.request_timeout,
            )

    @contextlib.contextmanager
    def watched(self) -> Iterator[None]:
        """Run a watcher thread while the block runs (the sync).

        Yields:
            Nothing; the sync runs inside.

        """
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(LOOK_EVERY):
                self.tell_due()

        watcher = threading.Thread(target=watch, name="slow-answers", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join(timeout=LOOK_EVERY * 2)
