"""Kill and resume (CI size): SIGKILL the tap at random points, resume from the last STATE.

After every kill the next run starts from the last STATE line a target would have received. The
union of what was committed must equal the emulator's events (late events ingested between runs
included), and each resume may re-read at most one page per stream and account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .soak import FAULT_MENU, SoakPlan, run_soak

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def test_kills_lose_nothing_and_duplicate_at_most_a_page(
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
