"""Fixtures for the reliability tests: servers that stop after each test, a time-warped tap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.reliability.harness import ForkServer
from tests.reliability.scripted_api import ScriptedEventsAPI

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(scope="session")
def tap_forks() -> Iterator[ForkServer]:
    """Fast tap runs: children of one process that imported the tap once (``zygote.py``)."""
    server = ForkServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def scripted_api() -> Iterator[ScriptedEventsAPI]:
    """A scripted loopback Events API, stopped after the test."""
    api = ScriptedEventsAPI().start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., Any]]:
    """Start emulators with any options; every one is stopped after the test."""
    from onepassword_emulator import Emulator  # noqa: PLC0415

    started: list[Any] = []

    def make(**options: Any) -> Any:
        emu = Emulator(**options)
        started.append(emu)
        return emu.start(host="127.0.0.1", port=0)

    try:
        yield make
    finally:
        for emu in started:
            emu.stop()
