"""The real command, held back for minutes of (warped) time, tells what it waits for.

The tap runs on the warped clock (``warp/sitecustomize.py``): each sleep is an instant jump that
the emulator's clock follows, written to a sleep log. A wait the tap takes in one sleep would
be a silent stretch as long as that sleep, so the log shows both halves of the promise: no
sleep is longer than ten seconds, and the waits are told on stderr, often enough.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .harness import assert_no_traceback, run_tap

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

NOTICE_EVERY = 10.0
WAITING = re.compile(
    r"waiting for the request budget of the token of account 'solo' \((?P<why>[^)]*)\): "
    r"(?P<left>\d+) s, until \d\d:\d\d:\d\d UTC$"
)


def sleeps(log: Path) -> list[float]:
    """Seconds of every sleep the tap asked for."""
    return [float(line.split("\t")[1]) for line in log.read_text().splitlines()]


def run_solo(
    emulator_factory: Callable[..., Any], tmp_path: Path, events: int, **settings: Any
) -> tuple[Any, Any, list[float]]:
    from onepassword_emulator import AccountSpec  # noqa: PLC0415

    # One stream: one thread pages it, so the warped clock moves by exactly what it slept.
    emu = emulator_factory(
        seed=9, events=events, accounts=[AccountSpec("solo", features=("signinattempts",))]
    )
    config = {
        "accounts": [{"name": "solo", "token": emu.account("solo").token}],
        "base_url": emu.base_url,
        **settings,
    }
    log = tmp_path / "sleeps.tsv"
    result = run_tap(
        tmp_path,
        config,
        sleep_log=log,
        env={"TAP_RELIABILITY_WARP_EMULATOR": emu.base_url},
        timeout=170,
    )
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr[-3000:]
    return emu, result, sleeps(log) if log.exists() else []


def test_a_small_budget_is_told_at_least_every_ten_seconds_it_holds_the_run(
    emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    _, result, slept = run_solo(
        emulator_factory, tmp_path, events=40, page_size=2, max_requests_per_minute=3
    )
    assert len(result.output.records("sign_in_attempts")) == 40
    held = sum(slept)
    assert held > 5 * 60, "the budget never held the run back"
    assert max(slept) <= NOTICE_EVERY
    told = [m for line in result.stderr.splitlines() if (m := WAITING.search(line))]
    assert len(told) >= held / NOTICE_EVERY
    assert {m["why"] for m in told} == {"the per-minute budget of 3 requests is used up"}


RETRYING = re.compile(
    r"sign_in_attempts, account 'solo': POST /api/v2/signinattempts failed \(429 Too Many "
    r"Requests[^)]*\); retrying in 45\.0 s, at \d\d:\d\d:\d\d UTC \(attempt 2 of 10\)$"
)
STILL = re.compile(
    r"sign_in_attempts, account 'solo': waiting to retry POST /api/v2/signinattempts: "
    r"(?P<left>\d+) s, until \d\d:\d\d:\d\d UTC$"
)


def test_a_long_retry_after_is_told_at_least_every_ten_seconds(
    emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    from onepassword_emulator import AccountSpec  # noqa: PLC0415

    emu = emulator_factory(
        seed=9, events=5, accounts=[AccountSpec("solo", features=("signinattempts",))]
    )
    emu.fail_next("/api/v2/signinattempts", "429", retry_after=45)
    config = {
        "accounts": [{"name": "solo", "token": emu.account("solo").token}],
        "base_url": emu.base_url,
    }
    log = tmp_path / "sleeps.tsv"
    result = run_tap(
        tmp_path, config, sleep_log=log, env={"TAP_RELIABILITY_WARP_EMULATOR": emu.base_url}
    )
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.output.records("sign_in_attempts")) == 5
    slept = sleeps(log)
    assert sum(slept) >= 45
    assert max(slept) <= NOTICE_EVERY
    lines = result.stderr.splitlines()
    assert sum(1 for line in lines if RETRYING.search(line)) == 1
    left = [int(m["left"]) for line in lines if (m := STILL.search(line))]
    assert left == [36, 27, 18, 9]  # five even steps of 9 s; the first is the warning
