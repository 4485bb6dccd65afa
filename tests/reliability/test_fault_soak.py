"""Fault soak (CI size): every fault kind the emulator can inject, and nothing is lost.

The long variant is ``make soak`` (``tests/reliability/soak.py``). Here a few thousand events
over three accounts and eight streams run through a fault after every few requests (429 storms
with and without Retry-After, 5xx bursts, connection resets, hangs past ``request_timeout``,
truncated bodies, empty pages with ``has_more: true``, rejected cursors).
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING, Any

from tests.reliability.harness import assert_no_traceback, run_tap
from tests.reliability.soak import FAULT_MENU, SoakPlan, run_soak

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def test_faults_land_the_same_events_as_a_clean_run(
    emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    plan = SoakPlan(seed=5, events_per_stream=250, page_size=25, fault_every=(2, 5), max_runs=3)
    report = run_soak(plan, emulator_factory, tmp_path)
    print(report.render())  # noqa: T201 - shown by pytest on failure
    assert report.problems() == []
    assert report.runs == 1, "a fault run needed a second run to finish"
    assert report.landed_unique == report.expected == 8 * 250
    assert set(report.faults_scheduled) == set(FAULT_MENU), "some fault kind was never tried"


def test_a_retry_after_is_honoured(emulator_factory: Callable[..., Any], tmp_path: Path) -> None:
    """429 with Retry-After: 7 -> the request is sent again 7 s later, and no other request of
    that token starts meanwhile (one already on its way, read ahead on another thread, may
    arrive in the first 100 ms)."""
    emu = emulator_factory(seed=3, events=30)
    emu.fail_next("/api/v2/signinattempts", "429", retry_after=7)
    config = {"token": emu.account("acme").token, "base_url": emu.base_url}
    result = run_tap(tmp_path, config, env={"TAP_RELIABILITY_WARP_EMULATOR": emu.base_url})
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr[-3000:]
    records = emu.requests
    refused = next(r for r in records if r.status == 429)
    again = next(r for r in records if r.time > refused.time and r.path == refused.path)
    assert (again.time - refused.time).total_seconds() >= 7
    meanwhile = [r for r in records if 0.1 < (r.time - refused.time).total_seconds() < 7]
    assert meanwhile == [], "requests went out while the token was told to wait"
    assert len(result.output.records("sign_in_attempts")) == 30


def test_a_429_without_retry_after_backs_off(
    emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """No Retry-After (as the real API): the tap waits before asking again, then lands all."""
    emu = emulator_factory(seed=3, events=30)
    emu.fail_next("/api/v2/itemusages", "429", count=3)
    config = {"token": emu.account("acme").token, "base_url": emu.base_url}
    result = run_tap(tmp_path, config, env={"TAP_RELIABILITY_WARP_EMULATOR": emu.base_url})
    assert result.returncode == 0, result.stderr[-3000:]
    records = [r for r in emu.requests if r.path == "/api/v2/itemusages"]
    for before, after in itertools.pairwise(records):
        if before.status == 429:
            assert (after.time - before.time).total_seconds() >= 1
    assert len(result.output.records("item_usages")) == 30


def test_cursors_rejected_twice_in_one_run_lose_nothing(
    emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """The API rejects cursors (secret rotated, cursor expired) twice during one long backfill:
    each time the tap reads again from its last event minus the lookback, and the run ends
    with every event, not with an error after the second time."""
    from onepassword_emulator import AccountSpec  # noqa: PLC0415

    emu = emulator_factory(
        seed=4, events=400, accounts=[AccountSpec("solo", features=("signinattempts",))]
    )
    rotations: list[int] = []

    def rotate_twice() -> None:
        while len(rotations) < 2 and not stop.is_set():
            cursor_requests = [
                r for r in emu.requests if isinstance(r.body, dict) and r.body.get("cursor")
            ]
            if len(cursor_requests) >= 3 + 5 * len(rotations):
                emu.rotate_secret()
                rotations.append(len(emu.requests))
            time.sleep(0.002)

    stop = threading.Event()
    rotator = threading.Thread(target=rotate_twice, daemon=True)
    rotator.start()
    config = {"token": emu.account("solo").token, "base_url": emu.base_url, "page_size": 20}
    try:
        result = run_tap(tmp_path, config)
    finally:
        stop.set()
        rotator.join(timeout=5)
    assert len(rotations) == 2, "the run ended before both rotations"
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr[-3000:]
    landed = {r["uuid"] for r in result.output.records("sign_in_attempts")}
    assert landed == {e["uuid"] for e in emu.events("solo", "signinattempts")}
    assert sum(1 for r in emu.requests if r.status == 400) >= 2
