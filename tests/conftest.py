"""Fixtures every test folder shares: a fresh emulator, and quick retries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from onepassword_emulator import Emulator
from tap_onepassword.api import EventsApiClient

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    """How `emulator` is made: the three default accounts, 250 events per stream.

    A folder's conftest overrides this fixture to change them for its tests.
    """
    return {"seed": 7, "events": 250}


@pytest.fixture
def emulator(emulator_options: dict[str, Any]) -> Iterator[Emulator]:
    """A fresh emulator serving on a free loopback port, stopped after the test."""
    with Emulator(**emulator_options) as emu:
        yield emu


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry after 10 ms instead of 1 s, doubling, so fault tests stay quick."""
    monkeypatch.setattr(EventsApiClient, "RETRY_BASE_SECONDS", 0.01)
