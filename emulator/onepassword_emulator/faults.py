"""Faults a test can schedule for the next requests to a path.

Each fault names what goes wrong (``FAULT_KINDS``) and how many matching requests it hits.
Faults are consumed in the order they were scheduled; ``"*"`` matches every API path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = (
    "429",
    "500",
    "502",
    "503",
    "reset",
    "hang",
    "truncate",
    "empty_page",
    "reject_cursor",
    "drip",
)
"""``429`` (param ``retry_after``), ``500``/``502``/``503``, ``reset`` (connection reset),
``hang`` (param ``seconds``, then answer normally), ``truncate`` (a cut JSON body; param
``incomplete=True`` declares the full length and drops the connection), ``empty_page`` (200,
``has_more: true``, the same cursor, no items), ``reject_cursor`` (400 as for a bad cursor),
``drip`` (param ``seconds``: the whole answer, status line to last byte, sent a few bytes at a
time over that long, default 10). ``reject_cursor`` on v3 is a bad page token. Every fault
also takes ``after=N``: let N matching requests pass first."""

_PARAMS = {
    "429": {"retry_after"},
    "hang": {"seconds"},
    "truncate": {"incomplete"},
    "drip": {"seconds"},
}


@dataclass
class Fault:
    """One scheduled fault and how many more requests it will hit."""

    path: str
    kind: str
    remaining: int
    params: dict[str, Any] = field(default_factory=dict)
    after: int = 0
    """Matching requests still to let pass before the fault hits."""

    def to_json(self) -> dict[str, Any]:
        """Return the fault as the control API lists it."""
        listed = {"path": self.path, "fault": self.kind, "remaining": self.remaining}
        return {**listed, **({"after": self.after} if self.after else {}), **self.params}


class FaultPlan:
    """The queue of scheduled faults, shared by every request thread."""

    def __init__(self) -> None:
        """Start with no faults."""
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def schedule(self, path: str, kind: str, count: int = 1, **params: Any) -> Fault:  # noqa: ANN401
        """Make the next ``count`` requests to ``path`` fail with ``kind``.

        Raises:
            ValueError: for an unknown fault, a bad count or a parameter the fault does not take.

        """
        kind = str(kind)
        if kind not in FAULT_KINDS:
            msg = f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}"
            raise ValueError(msg)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            msg = "count must be a positive integer"
            raise ValueError(msg)
        after = params.pop("after", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            msg = "after must be a non-negative integer (requests to let pass first)"
            raise ValueError(msg)
        unknown = set(params) - _PARAMS.get(kind, set())
        if unknown:
            msg = f"fault {kind!r} takes no parameter {', '.join(sorted(unknown))}"
            raise ValueError(msg)
        if not (path == "*" or path.startswith("/")):
            msg = "path must start with '/' or be '*'"
            raise ValueError(msg)
        for name in ("retry_after", "seconds"):
            value = params.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            ):
                msg = f"{name} must be a non-negative number of seconds"
                raise ValueError(msg)
        fault = Fault(path, kind, count, dict(params), after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, path: str) -> Fault | None:
        """Consume one hit of the first fault that matches ``path``, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.path in ("*", path):
                    if fault.after:
                        fault.after -= 1
                        return None
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        """Return the faults still scheduled."""
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        """Drop every scheduled fault."""
        with self._lock:
            self._faults.clear()
