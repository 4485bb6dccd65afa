"""Comparing what two runs of the tap wrote.

The throughput tests prove that a fast path changes nothing but speed: they run the tap with
and without it (``run_tap``, from ``tests.support.runs``) and compare every message.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tests.support.runs import run_tap

if TYPE_CHECKING:
    from onepassword_emulator import Emulator

__all__ = ["comparable", "config_for", "final_state", "fixed_start", "run_tap"]


def config_for(emu: Emulator, **settings: Any) -> dict[str, Any]:
    """Settings reading every emulator account over loopback HTTP."""
    return {
        "accounts": [{"name": a.name, "token": a.token} for a in emu.accounts],
        "base_url": emu.base_url,
        **settings,
    }


def comparable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages without what differs between any two runs: when records were extracted
    and the run's start time the SDK keeps in state as a signpost."""
    out = []
    for message in messages:
        kept = {k: v for k, v in message.items() if k != "time_extracted"}
        if message["type"] == "STATE":
            kept["value"] = copy.deepcopy(message["value"])
            for bookmark in kept["value"].get("bookmarks", {}).values():
                bookmark.pop("replication_key_signpost", None)
        out.append(kept)
    return out


def fixed_start(emu: Emulator) -> str:
    """A start before the emulator's 90 days of history and inside the API's 120: the same
    first request in every run, hence the same cursors (a default start moves with the clock)."""
    return (emu.now - timedelta(days=100)).strftime("%Y-%m-%dT%H:%M:%SZ")


def final_state(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The value of the last STATE message."""
    return [m["value"] for m in messages if m["type"] == "STATE"][-1]
