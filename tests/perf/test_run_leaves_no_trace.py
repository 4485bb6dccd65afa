"""A run changes process-wide settings for speed (garbage collection) and starts worker
threads: afterwards, successful or not, the process is as it was."""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

import pytest

from tap_onepassword.errors import TapOnePasswordError
from tests.support.compare import config_for
from tests.support.runs import run_tap

if TYPE_CHECKING:
    from onepassword_emulator import Emulator


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("read-ahead-")]


def test_a_run_restores_gc_settings_and_stops_its_workers(emulator: Emulator) -> None:
    before = gc.get_threshold()
    messages = run_tap(config_for(emulator, page_size=100))
    assert sum(m["type"] == "RECORD" for m in messages) == 5600 + 3
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    for worker in _workers():
        worker.join(timeout=5)
    assert _workers() == []


def test_a_failing_run_restores_them_too(emulator: Emulator) -> None:
    before = gc.get_threshold()
    # Audit events are refused (400) from their first request on: the run stops with an error.
    emulator.fail_next("/api/v2/auditevents", "reject_cursor", count=50)
    with pytest.raises(TapOnePasswordError):
        run_tap(config_for(emulator, page_size=100))
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    for worker in _workers():
        worker.join(timeout=5)
    assert _workers() == []
