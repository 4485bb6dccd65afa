"""A full run against the emulator: records, the requests behind them, and state."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tap_onepassword.timestamps import normalise_timestamp
from tests.support.runs import (
    EVENT_STREAMS,
    FEATURE_OF,
    duplicates,
    expected_records,
    partition,
    run_tap,
    tap_config,
)

if TYPE_CHECKING:
    import pytest

    from onepassword_emulator import Emulator

PAGE = 100  # 250 events per stream -> pages of 100, 100, 50


def test_records_equal_the_emulators_events_field_for_field(emulator: Emulator) -> None:
    result = run_tap(tap_config(emulator, page_size=PAGE))
    for account in emulator.accounts:
        for stream in EVENT_STREAMS:
            got = result.of(stream, account.name)
            if FEATURE_OF[stream] in account.features:
                assert got == expected_records(emulator, account.name, stream)
            else:
                assert got == []


def test_every_record_carries_a_normalised_utc_timestamp(emulator: Emulator) -> None:
    result = run_tap(tap_config(emulator, ["acme"]))
    stamps = [r["timestamp"] for r in result.records["audit_events"]]
    assert stamps
    for stamp in stamps:
        assert len(stamp) == len("2025-01-01T00:00:00.000000000Z")
        assert stamp.endswith("Z")
        assert stamp[19] == "."


def test_introspection_comes_first_then_reset_then_cursors(emulator: Emulator) -> None:
    run_tap(tap_config(emulator, page_size=PAGE))
    seen = emulator.requests
    introspections = [r for r in seen if r.path == "/api/v2/auth/introspect"]
    assert sorted(str(r.account) for r in introspections) == ["acme", "globex", "initech"]
    assert seen[: len(introspections)] == introspections

    acme_signins = [r for r in seen if r.path == "/api/v2/signinattempts" and r.account == "acme"]
    assert len(acme_signins) == 3  # 100 + 100 + 50, the last with has_more false
    first, *rest = acme_signins
    assert first.body["limit"] == PAGE
    assert set(first.body) == {"limit", "start_time"}
    assert all(set(r.body) == {"cursor"} for r in rest)
    assert all(r.status == 200 for r in seen)


def test_state_holds_cursor_endpoint_and_newest_timestamp_per_account(emulator: Emulator) -> None:
    result = run_tap(tap_config(emulator, page_size=PAGE))
    state = result.final_state
    for account in ("acme", "globex", "initech"):
        entry = partition(state, "sign_in_attempts", account)
        records = result.of("sign_in_attempts", account)
        newest = max(r["timestamp"] for r in records)
        assert entry["cursor"]
        assert entry["cursor_endpoint"] == "/api/v2/signinattempts"
        assert entry["replication_key"] == "timestamp"
        assert entry["replication_key_value"] == newest
        # No more than the next run needs: no copy of the bookmark, no null end_date.
        assert set(entry) == {
            "context",
            "cursor",
            "cursor_endpoint",
            "replication_key",
            "replication_key_value",
        }
    # Secrets stay out: contexts and state name accounts only.
    text = str(state)
    for emulated in emulator.accounts:
        assert emulated.token not in text


def test_a_state_message_follows_every_page_with_that_pages_cursor(emulator: Emulator) -> None:
    # state_interval_seconds 0: a STATE whenever the state changed (the cadence is tested in
    # test_state_cadence.py).
    result = run_tap(tap_config(emulator, ["acme"], page_size=PAGE, state_interval_seconds=0))
    cursors = []
    emitted = 0
    for message in result.messages:
        if message["type"] == "RECORD" and message["stream"] == "item_usages":
            emitted += 1
        if message["type"] == "STATE":
            entry = message["value"]["bookmarks"].get("item_usages", {})
            parts = entry.get("partitions", [])
            cursor = parts[0].get("cursor") if parts else None
            if cursor and (not cursors or cursors[-1][0] != cursor):
                cursors.append((cursor, emitted))
    # One new cursor after each of the three pages, each written only once the page's
    # records were out (100, 200, 250).
    assert [count for _, count in cursors] == [100, 200, 250]


def test_second_run_reads_only_new_and_late_events(emulator: Emulator) -> None:
    config = tap_config(emulator, page_size=PAGE)
    first = run_tap(config)
    new = emulator.add_events("acme", "signinattempts", 3)
    late = emulator.add_events("acme", "signinattempts", 2, late=True)
    late_audit = emulator.add_events("initech", "auditevents", 2, late=True)
    emulator.clear_requests()

    second = run_tap(config, state=first.final_state)

    got = {(r["account_name"], r["uuid"]) for rs in second.records.values() for r in rs}
    want = {("acme", e["uuid"]) for e in new + late} | {("initech", e["uuid"]) for e in late_audit}
    assert got - {("acme", r["uuid"]) for r in second.records.get("introspection", [])} >= want
    event_records = [r for s in EVENT_STREAMS for r in second.records.get(s, [])]
    assert {(r["account_name"], r["uuid"]) for r in event_records} == want
    # Late events have older timestamps than the bookmark, and arrive anyway.
    bookmark = partition(first.final_state, "sign_in_attempts", "acme")["replication_key_value"]
    assert all(r["timestamp"] < bookmark for r in second.of("sign_in_attempts", "acme")[3:])
    # Every data request of the second run resumed from the stored cursor.
    data = [r for r in emulator.requests if "introspect" not in r.path]
    assert data
    assert all(set(r.body) == {"cursor"} for r in data)


def test_resume_with_nothing_new_emits_nothing_and_keeps_the_cursor(emulator: Emulator) -> None:
    config = tap_config(emulator, ["acme"])
    first = run_tap(config)
    second = run_tap(config, state=first.final_state)
    assert all(not second.records.get(s) for s in EVENT_STREAMS)
    for stream in EVENT_STREAMS:
        before = partition(first.final_state, stream, "acme")
        after = partition(second.final_state, stream, "acme")
        assert after["replication_key_value"] == before["replication_key_value"]
        assert after["cursor"]


def test_a_token_without_a_feature_skips_that_stream_with_one_warning(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    result = run_tap(tap_config(emulator, ["acme", "initech"]))
    assert result.of("item_usages", "initech") == []
    assert result.of("item_usages", "acme")
    assert result.of("sign_in_attempts", "initech")
    messages = [r.getMessage() for r in caplog.records]
    warnings = [m for m in messages if "lacks the 'itemusages'" in m]
    assert len(warnings) == 1
    assert "initech" in warnings[0]
    asked = [r for r in emulator.requests if r.path.endswith("itemusages")]
    assert {r.account for r in asked} == {"acme"}


def test_introspection_stream_has_one_record_per_account(emulator: Emulator) -> None:
    result = run_tap(tap_config(emulator))
    records = result.records["introspection"]
    assert [r["account_name"] for r in records] == ["acme", "globex", "initech"]
    by_name = {r["account_name"]: r for r in records}
    for account in emulator.accounts:
        record = by_name[account.name]
        assert sorted(record["features"]) == sorted(account.features)
        assert record["account_uuid"] == account.account_uuid
        assert record["uuid"]
        assert record["issued_at"]


def test_v1_reads_v1_routes_and_records_lack_v2_fields(emulator: Emulator) -> None:
    result = run_tap(tap_config(emulator, ["globex"], api_version="v1"))
    paths = {r.path for r in emulator.requests}
    assert paths == {
        "/api/auth/introspect",
        "/api/v1/signinattempts",
        "/api/v1/itemusages",
        "/api/v1/auditevents",
    }
    for stream in EVENT_STREAMS:
        assert result.of(stream, "globex") == expected_records(
            emulator, "globex", stream, version="v1"
        )
    v2_only = {"account_uuid", "actor_type", "actor_account_uuid"}
    for stream in EVENT_STREAMS:
        assert not any(v2_only & set(r) for r in result.of(stream, "globex"))
    users = [r["target_user"] for r in result.of("sign_in_attempts", "globex")]
    assert not any({"user_type", "user_account_uuid"} & set(u) for u in users)
    # The v1 introspection answer (PascalCase) is renamed to the record's fields.
    (introspection,) = result.records["introspection"]
    assert sorted(introspection["features"]) == sorted(emulator.account("globex").features)
    assert "account_uuid" not in introspection or introspection["account_uuid"] is None


def test_v2_records_of_an_msp_account_carry_the_v2_fields(emulator: Emulator) -> None:
    result = run_tap(tap_config(emulator, ["globex"]))
    audits = result.of("audit_events", "globex")
    assert all("actor_type" in r and "account_uuid" in r for r in audits)
    assert any(
        r["target_user"].get("user_type") == "external_user"
        for r in result.of("sign_in_attempts", "globex")
    )


def test_switching_api_version_never_sends_a_v2_cursor_to_v1(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    first = run_tap(tap_config(emulator, ["acme"]))
    emulator.clear_requests()
    caplog.set_level(logging.WARNING)
    second = run_tap(tap_config(emulator, ["acme"], api_version="v1"), state=first.final_state)
    data = [r for r in emulator.requests if "introspect" not in r.path]
    assert {r.path.split("/")[2] for r in data} == {"v1"}
    assert all("cursor" not in r.body for r in data[:1])
    assert all("start_time" in r.body for r in data if "cursor" not in r.body)
    assert any("belongs to /api/v2/" in r.getMessage() for r in caplog.records)
    entry = partition(second.final_state, "audit_events", "acme")
    assert entry["cursor_endpoint"] == "/api/v1/auditevents"


def test_keys_are_unique_across_accounts_sharing_events(emulator: Emulator) -> None:
    # The same token under two names: the same events twice, told apart by account_name.
    token = emulator.account("acme").token
    config = {
        "accounts": [{"name": "blue", "token": token}, {"name": "green", "token": token}],
        "base_url": emulator.base_url,
    }
    result = run_tap(config)
    for stream in EVENT_STREAMS:
        records = result.records[stream]
        assert len(records) == 2 * len(emulator.events("acme", FEATURE_OF[stream]))
        assert duplicates(records) == {}
        assert {r["uuid"] for r in result.of(stream, "blue")} == {
            r["uuid"] for r in result.of(stream, "green")
        }


def test_uniqueness_check_finds_duplicates() -> None:
    records = [
        {"account_name": "a", "uuid": "1"},
        {"account_name": "a", "uuid": "1"},
        {"account_name": "b", "uuid": "1"},
    ]
    assert duplicates(records) == {("a", "1"): 2}


def test_end_date_bounds_the_first_run(emulator: Emulator) -> None:
    events = expected_records(emulator, "acme", "audit_events")
    cut = sorted(r["timestamp"] for r in events)[len(events) // 2]
    result = run_tap(tap_config(emulator, ["acme"], end_date=cut))
    got = result.of("audit_events", "acme")
    assert got
    assert all(r["timestamp"] < cut for r in got)
    assert {r["uuid"] for r in got} == {r["uuid"] for r in events if r["timestamp"] < cut}
    reset = next(r for r in emulator.requests if r.path == "/api/v2/auditevents")
    assert reset.body["end_time"] >= cut[:19]


def test_start_date_bounds_the_first_run(emulator: Emulator) -> None:
    events = expected_records(emulator, "acme", "item_usages")
    cut = sorted(r["timestamp"] for r in events)[len(events) // 2]
    start = cut[:19] + "Z"
    result = run_tap(tap_config(emulator, ["acme"], start_date=start))
    got = result.of("item_usages", "acme")
    bound = normalise_timestamp(start)
    assert {r["uuid"] for r in got} == {r["uuid"] for r in events if r["timestamp"] >= bound}
    reset = next(r for r in emulator.requests if r.path == "/api/v2/itemusages")
    assert reset.body["start_time"] == start


def test_a_backfill_bounded_by_end_date_then_an_open_run_loses_nothing(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # A cursor keeps the end_time of its reset request: re-polled it serves nothing past it.
    # Dropping end_date afterwards must not leave the partition on that dead cursor.
    events = emulator.events("acme", "auditevents")
    stamps = sorted(normalise_timestamp(e["timestamp"]) for e in events)
    end_date = stamps[len(stamps) // 2][:19] + "Z"
    first = run_tap(tap_config(emulator, ["acme"], end_date=end_date))
    got_first = first.of("audit_events", "acme")
    assert got_first
    assert all(r["timestamp"] < end_date for r in got_first)
    assert partition(first.final_state, "audit_events", "acme")["cursor_end_date"]

    emulator.add_events("acme", "auditevents", 3)
    caplog.set_level(logging.WARNING)
    second = run_tap(tap_config(emulator, ["acme"]), state=first.final_state)
    landed = {r["uuid"] for r in got_first} | {r["uuid"] for r in second.of("audit_events", "acme")}
    assert landed == {e["uuid"] for e in emulator.events("acme", "auditevents")}
    assert any("made with end_date" in r.getMessage() for r in caplog.records)
    assert "cursor_end_date" not in partition(second.final_state, "audit_events", "acme")
