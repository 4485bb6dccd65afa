"""When a STATE message may go out: every few seconds, and never more bytes than the records.

A STATE message holds the state of every stream and account, so its size grows with the
accounts. Written after every page, a run of N accounts wrote about N pages of STATE messages
of N partitions each: bytes that grew with the square of the accounts (some 80 MB of STATE for
one run of 200 accounts). Now a STATE goes out only when both hold:

- at least `interval` seconds passed since the last one (the `state_interval_seconds`
  setting), so a long run still checkpoints every few seconds;
- the records written since the last one take at least `OUTWEIGH` (10) times the bytes of
  that STATE, so the STATE bytes of a run stay under a tenth of its record bytes (plus the
  last STATE): linear in the work, however many accounts share the state.

The tap writes one more at the end of the run (or when SIGTERM stops it). Whatever goes out is
the state of pages already emitted completely; waiting longer only means more records to read
again after a kill. An interval of 0 writes a STATE whenever the state changed (after every
page), as before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

OUTWEIGH: Final = 10
"""Bytes of output between two STATE messages, per byte of the earlier one."""


class StateCadence:
    """Decides whether a STATE message may go out now."""

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with no STATE written: the first may go once `interval` seconds passed.

        Args:
            interval: Least seconds between two STATE messages; 0 for no limit.
            clock: Monotonic seconds (injectable for tests).

        """
        self.interval = interval
        self._clock = clock
        self._last_time = clock()
        self._last_size = 0
        self._written_then = 0

    def due(self, written: int) -> bool:
        """Whether a STATE may go out now.

        Args:
            written: Bytes of Singer messages written so far in the run.

        Returns:
            True when the interval has passed and the output since the last STATE outweighs it.

        """
        if self.interval <= 0:
            return True
        return (
            written - self._written_then >= OUTWEIGH * self._last_size
            and self._clock() - self._last_time >= self.interval
        )

    def wrote(self, written: int, size: int) -> None:
        """Note that a STATE of `size` bytes went out, `written` bytes into the run's output.

        Args:
            written: Bytes of Singer messages written so far, the STATE included.
            size: Bytes of the STATE message.

        """
        self._last_time = self._clock()
        self._last_size = size
        self._written_then = written
