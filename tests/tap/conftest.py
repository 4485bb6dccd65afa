"""Fixtures for the tap's own tests: a fresh emulator, and quick retries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from onepassword_emulator import Emulator
from tap_onepassword.api import EventsApiClient

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator with the three default accounts and 250 events per stream."""
    with Emulator(seed=7, events=250) as emu:
        yield emu


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry after 10 ms instead of 1 s, doubling, so fault tests stay quick."""
    monkeypatch.setattr(EventsApiClient, "RETRY_BASE_SECONDS", 0.01)
