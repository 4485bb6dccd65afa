"""Faults: retried requests, a rejected cursor, and a run with faults landing the same events."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pytest

from tap_onepassword.errors import ApiResponseError
from tap_onepassword.timestamps import parse_timestamp
from tests.support.runs import EVENT_STREAMS, expected_records, partition, run_tap, tap_config

if TYPE_CHECKING:
    from onepassword_emulator import Emulator

PAGE = 100


@pytest.mark.usefixtures("fast_retries")
def test_a_run_with_every_fault_lands_the_same_events(emulator: Emulator) -> None:
    faults: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "/api/v2/auth/introspect": [("503", {})],
        "/api/v2/signinattempts": [("429", {}), ("500", {}), ("reset", {}), ("empty_page", {})],
        "/api/v2/itemusages": [("502", {}), ("truncate", {}), ("hang", {"seconds": 2})],
        "/api/v2/auditevents": [("503", {}), ("truncate", {"incomplete": True})],
    }
    for path, kinds in faults.items():
        for fault, params in kinds:
            emulator.fail_next(path, fault, **params)
    result = run_tap(tap_config(emulator, ["acme"], page_size=PAGE, request_timeout=0.5))
    for stream in EVENT_STREAMS:
        assert result.of(stream, "acme") == expected_records(emulator, "acme", stream)
    assert not emulator.faults.pending()
    # Each fault cost one extra request (the empty page one too: same cursor asked again).
    # The hung request is logged when its answer is finally written, after the tap moved on.
    deadline = time.monotonic() + 5
    while not any(r.fault == "hang" for r in emulator.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    for path, kinds in faults.items():
        clean = 1 if "introspect" in path else 3
        assert len([r for r in emulator.requests if r.path == path]) == clean + len(kinds)


def test_retry_after_is_honoured(emulator: Emulator) -> None:
    emulator.fail_next("/api/v2/auditevents", "429", retry_after=1)
    run_tap(tap_config(emulator, ["acme"]))
    audit = [r for r in emulator.requests if r.path == "/api/v2/auditevents"]
    throttled, retried = audit[0], audit[1]
    assert throttled.status == 429
    assert retried.status == 200
    assert (retried.time - throttled.time).total_seconds() >= 0.95


def test_a_429_without_retry_after_backs_off_and_pauses_the_token(emulator: Emulator) -> None:
    emulator.fail_next("/api/v2/auditevents", "429", count=2)
    run_tap(tap_config(emulator, ["acme"]))
    audit = [r for r in emulator.requests if r.path == "/api/v2/auditevents"]
    assert [r.status for r in audit[:3]] == [429, 429, 200]
    assert (audit[1].time - audit[0].time).total_seconds() >= 0.95  # 1 s
    assert (audit[2].time - audit[1].time).total_seconds() >= 1.95  # then 2 s


@pytest.mark.usefixtures("fast_retries")
def test_retries_give_up_with_a_clear_error(emulator: Emulator) -> None:
    emulator.fail_next("/api/v2/auditevents", "503", count=20)
    with pytest.raises(ApiResponseError, match=r"audit_events, account 'acme': gave up after 10"):
        run_tap(tap_config(emulator, ["acme"]))
    assert len([r for r in emulator.requests if r.path == "/api/v2/auditevents"]) == 10


def test_a_rejected_cursor_falls_back_once_to_last_timestamp_minus_lookback(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # A STATE whenever state changes (interval 0), to see the rejected cursor's null go out.
    config = tap_config(
        emulator, ["acme"], page_size=PAGE, lookback_minutes=30, state_interval_seconds=0
    )
    first = run_tap(config)
    newest = partition(first.final_state, "item_usages", "acme")["replication_key_value"]
    emulator.rotate_secret()  # every stored cursor is now refused with 400
    added = emulator.add_events("acme", "itemusages", 5)
    late = emulator.add_events("acme", "itemusages", 2, late=True)
    emulator.clear_requests()
    caplog.set_level(logging.WARNING)

    second = run_tap(config, state=first.final_state)

    asked = [r for r in emulator.requests if r.path == "/api/v2/itemusages"]
    assert asked[0].status == 400
    assert set(asked[0].body) == {"cursor"}
    reset = asked[1].body
    assert set(reset) == {"limit", "start_time"}
    lookback = (parse_timestamp(newest) - parse_timestamp(reset["start_time"])).total_seconds()
    assert 30 * 60 <= lookback < 30 * 60 + 1
    got = {r["uuid"] for r in second.of("item_usages", "acme")}
    # No gap: everything new is there, and the late events inside the lookback window too.
    assert {e["uuid"] for e in added} <= got
    in_window = [e for e in late if e["timestamp"][:19] >= reset["start_time"][:19]]
    assert {e["uuid"] for e in in_window} <= got
    warnings = [r.getMessage() for r in caplog.records if "rejected the cursor" in r.getMessage()]
    assert len([w for w in warnings if "item_usages" in w]) == 1
    entry = partition(second.final_state, "item_usages", "acme")
    assert entry["cursor"]
    assert entry["cursor_endpoint"] == "/api/v2/itemusages"
    # The null written at the rejection went out in a STATE message before the re-read.
    assert any(
        partition(state, "item_usages", "acme").get("cursor", "") is None
        for state in second.states
        if "item_usages" in state["bookmarks"]
    )


def test_a_second_rejection_is_a_clear_error(emulator: Emulator) -> None:
    config = tap_config(emulator, ["acme"], page_size=PAGE)
    first = run_tap(config)
    path = "/api/v2/auditevents"
    emulator.fail_next(path, "reject_cursor")  # the stored cursor
    emulator.fail_next(path, "empty_page")  # the fallback's reset: has_more, go on
    emulator.fail_next(path, "reject_cursor")  # the fallback's next cursor
    emulator.clear_requests()
    with pytest.raises(ApiResponseError, match="rejected a cursor again"):
        run_tap(config, state=first.final_state)
    bodies = [r.body for r in emulator.requests if r.path == path]
    assert [set(b) for b in bodies] == [{"cursor"}, {"limit", "start_time"}, {"cursor"}]


def test_a_rejected_cursor_mid_run_loses_nothing(emulator: Emulator) -> None:
    config = tap_config(emulator, ["acme"], page_size=PAGE)
    path = "/api/v2/signinattempts"
    # The reset answers an empty page with has_more; the cursor that follows is refused.
    emulator.fail_next(path, "empty_page")
    emulator.fail_next(path, "reject_cursor")
    result = run_tap(config)
    bodies = [r.body for r in emulator.requests if r.path == path]
    reset, cursor = {"limit", "start_time"}, {"cursor"}
    assert [set(b) for b in bodies[:3]] == [reset, cursor, reset]
    got = result.of("sign_in_attempts", "acme")
    want = expected_records(emulator, "acme", "sign_in_attempts")
    assert {r["uuid"] for r in got} == {r["uuid"] for r in want}
