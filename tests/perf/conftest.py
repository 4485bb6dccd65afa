"""Fixtures for the throughput tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from onepassword_emulator import Emulator
from tap_onepassword.api import EventsApiClient

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The three default accounts with 700 events per stream (7 pages of 100 each)."""
    with Emulator(seed=11, events=700) as emu:
        yield emu


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry after 10 ms instead of 1 s, doubling, so fault tests stay quick."""
    monkeypatch.setattr(EventsApiClient, "RETRY_BASE_SECONDS", 0.01)
