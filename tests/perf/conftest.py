"""Fixtures for the throughput tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    """The three default accounts with 700 events per stream (7 pages of 100 each)."""
    return {"seed": 11, "events": 700}
