"""Fixtures for the emulator's own tests: a running emulator and an HTTP session per account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from onepassword_emulator import Emulator


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    """The default accounts with 1,000 events per stream."""
    return {"seed": 7, "events": 1000}


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    """The emulator under test (the shared fixture, by its short name here)."""
    return emulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A plain HTTP session (no token set)."""
    with requests.Session() as session:
        yield session


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def bearer() -> Callable[[str], dict[str, str]]:
    """Turn a token into the Authorization header that carries it."""
    return _bearer
