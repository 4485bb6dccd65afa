"""Fixtures for the emulator's own tests: a running emulator and an HTTP session per account."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import requests

from onepassword_emulator import Emulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A running emulator with the default accounts and 1,000 events per stream."""
    with Emulator(seed=7, events=1000) as emulator:
        yield emulator


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
