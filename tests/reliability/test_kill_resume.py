"""Kill and resume (CI size): SIGKILL or SIGTERM the tap at random points, resume from STATE.

After every kill the next run starts from the last STATE line a target would have received. The
union of what was committed must equal the emulator's events (late events ingested between runs
included), and a resume may re-read only what the stopped run emitted after its last STATE
(STATE messages come at most every `state_interval_seconds`, here 1).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

from tests.reliability.harness import SingerOutput, run_tap, subprocess_env, tap_args
from tests.reliability.soak import FAULT_MENU, SoakPlan, expected_keys, run_soak

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def test_kills_lose_nothing_and_re_read_only_what_came_after_the_last_state(
    emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    plan = SoakPlan(
        seed=9,
        events_per_stream=150,
        page_size=20,
        kills=4,
        late_events=5,
        fault_every=(6, 12),
        faults=tuple(f for f in FAULT_MENU if f not in {"reject_cursor", "hang"}),
        max_runs=12,
    )
    report = run_soak(plan, emulator_factory, tmp_path)
    print(report.render())  # noqa: T201 - shown by pytest on failure
    assert report.problems() == []
    assert report.kills == 4
    assert report.late_added > 0
    assert report.landed_unique == report.expected
    assert report.duplicates_after_kill, "no resume was measured"
    assert report.kill_bound_violations == []
    # The stopped runs had checkpointed on the way (not only everything re-read).
    assert report.states_before_stops > 0
    assert report.landed_total - report.landed_unique <= sum(report.uncommitted_at_stop)


def test_sigterm_while_the_target_is_slow_leaves_whole_lines_and_a_usable_state(
    emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Schedulers stop a job with SIGTERM, often while the tap is blocked writing to a slow
    target. The SDK then writes a last STATE from the signal handler. What the target reads
    must still be whole Singer lines, the run must end without a crash line, and resuming
    from that last STATE must land every event."""
    emu = emulator_factory(seed=12, events=1500)
    config = {
        "accounts": [{"name": a.name, "token": a.token} for a in emu.accounts],
        "base_url": emu.base_url,
        "page_size": 200,
    }
    expected = expected_keys(emu, "v2")
    delays = random.Random(3)
    for trial in range(3):
        cmd = tap_args(tmp_path, config, name=f"term{trial}")
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=subprocess_env(warp=False),
        )
        # Once the tap reads events (its start-up takes seconds on a busy machine), nobody
        # reads its output: the pipe fills and the tap blocks writing.
        emu.clear_requests()
        deadline = time.monotonic() + 60
        while not any(r.method == "POST" for r in emu.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delays.uniform(0.4, 1.0))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        stdout, stderr = out.decode(), err.decode()
        output = SingerOutput.parse(stdout)
        assert output.partial_tail == "", "a torn last line"
        assert output.other_lines == [], f"torn or foreign lines: {output.other_lines[:1]!r:.300}"
        assert "Traceback" not in stderr
        assert "error: unexpected" not in stderr, stderr[-2000:]
        state = output.last_state()
        assert state is not None
        resumed = run_tap(tmp_path, config, state=state, name=f"resume{trial}")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        landed = set(output.event_keys_before_last_state()) | set(resumed.output.event_keys())
        assert landed == expected
