"""STATE messages at a pace that grows with the work, not with the square of the accounts.

Each STATE holds every stream and account. The tap writes one at most every
`state_interval_seconds`, only once the output since the last one outweighs it tenfold, and
one at the end of the run (also of a failed run). Every STATE still holds only pages whose
records were all written before it.
"""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from typing import Any

import pytest

from onepassword_emulator import AccountSpec, Emulator
from tap_onepassword.cadence import StateCadence
from tap_onepassword.output import SingerOutput, StateOutput
from tap_onepassword.tap import TapOnePassword
from tests.support.runs import EVENT_STREAMS, partition, run_tap, tap_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_cadence_waits_for_the_interval_and_for_records_that_outweigh_the_last_state() -> None:
    clock = FakeClock()
    cadence = StateCadence(5, clock=clock)
    assert not cadence.due(written=10_000)  # the run just started
    clock.now += 5
    assert cadence.due(written=10_000)
    cadence.wrote(written=10_800, size=800)
    clock.now += 60
    assert not cadence.due(written=18_700)  # 7,900 bytes since: less than ten times the STATE
    assert cadence.due(written=18_800)
    clock.now -= 56  # only 4 s after the last STATE
    assert not cadence.due(written=1_000_000)


def test_an_interval_of_zero_lets_every_state_out() -> None:
    cadence = StateCadence(0, clock=FakeClock())
    cadence.wrote(written=500, size=500)
    assert cadence.due(written=500)


def test_the_state_writer_holds_back_until_due_and_always_writes_the_last_one() -> None:
    clock = FakeClock()
    writer = SingerOutput()
    states = StateOutput(writer)
    states.cadence = StateCadence(5, clock=clock)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(out):
        states.write_state({"bookmarks": {"s": {"n": 1}}})  # too early
        clock.now += 6
        states.write_state({"bookmarks": {"s": {"n": 2}}})
        states.write_state({"bookmarks": {"s": {"n": 3}}})  # no records since
        states.write_final({"bookmarks": {"s": {"n": 3}}})
        states.write_final({"bookmarks": {"s": {"n": 3}}})  # equal to the last: left out
    out.seek(0)
    lines = out.read().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"type": "STATE", "value": {"bookmarks": {"s": {"n": 2}}}},
        {"type": "STATE", "value": {"bookmarks": {"s": {"n": 3}}}},
    ]
    assert states.messages == 2
    assert writer.written == sum(len(line) + 1 for line in lines)


def test_a_short_run_writes_one_state_at_its_end(emulator: Emulator) -> None:
    result = run_tap(tap_config(emulator, page_size=100))
    kinds = [m["type"] for m in result.messages]
    assert kinds.count("STATE") == 1
    assert kinds[-1] == "STATE"
    for stream in EVENT_STREAMS:
        for account in emulator.accounts:
            if result.of(stream, account.name):
                assert partition(result.final_state, stream, account.name)["cursor"]


def _state_bytes_per_account(accounts: int) -> tuple[float, int]:
    specs = [AccountSpec(f"client{n:03d}") for n in range(accounts)]
    with Emulator(seed=5, events=30, accounts=specs) as emu:
        result = run_tap(tap_config(emu, page_size=10))
    states = [m for m in result.messages if m["type"] == "STATE"]
    keys = [(s, r["account_name"], r["uuid"]) for s in EVENT_STREAMS for r in result.records[s]]
    assert len(keys) == len(set(keys)) == accounts * 3 * 30  # every event once
    size = sum(len(json.dumps(m, separators=(",", ":"))) for m in states)
    return size / accounts, len(states)


def test_state_bytes_of_a_run_grow_with_the_accounts_not_their_square() -> None:
    few, few_messages = _state_bytes_per_account(4)
    many, many_messages = _state_bytes_per_account(40)
    # Each account adds its partitions to the STATE; ten times the accounts must not mean ten
    # times the STATE messages (per page, they were 3 pages x 3 streams x accounts).
    assert many_messages == few_messages == 1
    assert many < few * 1.2


def test_states_during_a_run_come_at_the_interval_and_only_after_whole_pages() -> None:
    page = 10
    with Emulator(seed=3, events=300, latency_ms=80) as emu:
        config = tap_config(emu, ["acme"], page_size=page, state_interval_seconds=1)
        started = time.monotonic()
        tap = TapOnePassword(config=config)
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        with redirect_stdout(out):
            tap.sync_all()
        elapsed = time.monotonic() - started
    out.seek(0)
    lines = out.read().splitlines()
    messages: list[dict[str, Any]] = [json.loads(line) for line in lines]
    states = [i for i, m in enumerate(messages) if m["type"] == "STATE"]
    assert len(states) >= 2  # 30 pages of 80 ms for each stream: at least one before the end
    assert len(states) <= elapsed + 1
    # The output before each STATE outweighs the STATE before it tenfold (the first aside).
    written, previous = 0, 0
    for index, line in enumerate(lines):
        if index in states[:-1]:
            assert written >= 10 * previous
            written, previous = 0, len(line.encode()) + 1
        else:
            written += len(line.encode()) + 1
    # Each STATE holds, per stream, the cursor of a page whose records all came before it.
    for stream in EVENT_STREAMS:
        emitted = 0
        for message in messages:
            if message["type"] == "RECORD" and message["stream"] == stream:
                emitted += 1
            if message["type"] == "STATE" and stream in message["value"]["bookmarks"]:
                entry = partition(message["value"], stream, "acme")
                if entry.get("cursor"):
                    assert emitted % page == 0 or emitted == 300, (stream, emitted)


@pytest.mark.usefixtures("fast_retries")
def test_a_failed_run_still_writes_the_state_of_what_it_emitted(emulator: Emulator) -> None:
    emulator.fail_next("/api/v2/signinattempts", "500", count=100)
    tap = TapOnePassword(config=tap_config(emulator, ["acme"], page_size=100))
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(out), pytest.raises(Exception, match="gave up"):
        tap.sync_all()
    out.seek(0)
    messages = [json.loads(line) for line in out.read().splitlines()]
    assert messages[-1]["type"] == "STATE"
    state = messages[-1]["value"]
    # audit_events is synced before sign_in_attempts (by name): its cursor is kept.
    assert partition(state, "audit_events", "acme")["cursor"]
    assert all(
        not p.get("cursor")
        for p in state["bookmarks"].get("sign_in_attempts", {}).get("partitions", [])
    )
