"""Kill and resume, audit events v3: SIGKILL/SIGTERM the tap at random points, resume from STATE.

Between runs the emulator ingests new and late audit events. Whatever a target committed (the
records before the last STATE it read) over all runs must be exactly the emulator's v3 events,
and each resume may re-read at most one page per account.
"""

from __future__ import annotations

import json
import random
import signal
from collections import Counter
from typing import TYPE_CHECKING, Any

from tests.reliability.harness import SingerOutput, run_tap, run_tap_and_kill

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

V3 = "audit_events_v3"
PAGE = 25
Key = tuple[str, str]


def v3_keys(output: SingerOutput, *, committed_only: bool) -> list[Key]:
    messages = output.messages
    if committed_only:
        last = max((i for i, m in enumerate(messages) if m.get("type") == "STATE"), default=-1)
        messages = messages[: last + 1]
    return [
        (m["record"]["account_name"], m["record"]["event_id"])
        for m in messages
        if m.get("type") == "RECORD" and m.get("stream") == V3
    ]


def v3_catalog(tmp_path: Path, config: dict[str, Any]) -> str:
    discovered = run_tap(tmp_path, config, args=("--discover",), name="discover")
    assert discovered.returncode == 0, discovered.stderr[-2000:]
    catalog = json.loads(discovered.stdout)
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == V3
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    return str(path)


def test_v3_kills_at_random_points_lose_nothing_and_reread_at_most_a_page(
    emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    emu = emulator_factory(seed=21, events=300, latency_ms=2)
    config = {
        "accounts": [{"name": a.name, "token": a.token} for a in emu.accounts],
        "base_url": emu.base_url,
        "page_size": PAGE,
        "state_interval_seconds": 0,  # a STATE after every page: the re-read bound is a page
    }
    catalog = v3_catalog(tmp_path, config)
    rng = random.Random(14)
    committed: list[Key] = []
    rereads: list[Counter[str]] = []
    state: dict[str, Any] | None = None
    kills = 0
    for run_no in range(12):
        seen_before = set(committed)
        if kills < 4:
            result, killed = run_tap_and_kill(
                tmp_path,
                config,
                state=state,
                kill_after_lines=rng.randint(10, 300),
                sig=rng.choice([signal.SIGKILL, signal.SIGKILL, signal.SIGTERM]),
                args=("--catalog", catalog),
                name=f"run{run_no}",
            )
        else:
            result, killed = (
                run_tap(
                    tmp_path, config, state=state, args=("--catalog", catalog), name=f"run{run_no}"
                ),
                False,
            )
        assert killed or result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        received = v3_keys(result.output, committed_only=False)
        rereads.append(Counter(account for account, _ in received if (account, _) in seen_before))
        committed += v3_keys(result.output, committed_only=killed)
        state = result.output.last_state() or state
        if not killed:
            break
        kills += 1
        emu.add_events(rng.choice(["acme", "globex", "initech"]), "auditevents", 6)
        emu.add_events(rng.choice(["acme", "globex", "initech"]), "auditevents", 4, late=True)
    assert kills == 4
    expected = {
        (account.name, event["uuid"])
        for account in emu.accounts
        for event in emu.events(account.name, "auditevents", version="v3")
    }
    assert set(committed) == expected
    assert all(count <= PAGE for reread in rereads for count in reread.values()), rereads
