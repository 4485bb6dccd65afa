"""Audit events v3 (beta): opt-in, resumed from insertion time, every event once."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from onepassword_emulator import AccountSpec, Emulator
from onepassword_emulator.rfc3339 import parse_ns
from tap_onepassword.outcome import AccountsFailedError
from tap_onepassword.ratebudget import RateBudget
from tap_onepassword.tap import TapOnePassword
from tap_onepassword.timestamps import normalise_timestamp
from tests.support.runs import partition, run_cli, run_tap, selecting, tap_config

if TYPE_CHECKING:
    from pathlib import Path

V3 = "audit_events_v3"
PATH = "/api/v3/auditevents"


def v3_keys(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["account_name"], r["event_id"]) for r in records]


def expected_keys(emu: Emulator) -> list[tuple[str, str]]:
    return [
        (account.name, event["uuid"])
        for account in emu.accounts
        if "auditevents" in account.features
        for event in emu.events(account.name, "auditevents", version="v3")
    ]


def v3_requests(emu: Emulator, account: str | None = None) -> list[Any]:
    return [r for r in emu.requests if r.path == PATH and account in (None, r.account)]


def run_v3(config: dict[str, Any], state: dict[str, Any] | None = None, *streams: str) -> Any:
    return run_tap(config, state=state, catalog=selecting(config, V3, *streams))


def test_the_stream_is_off_unless_selected(emulator: Emulator) -> None:
    config = tap_config(emulator, page_size=100)
    catalog = TapOnePassword(config=config).catalog_dict
    entry = next(s for s in catalog["streams"] if s["tap_stream_id"] == V3)
    top = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
    assert top["selected-by-default"] is False
    result = run_tap(config)
    assert V3 not in result.records
    assert v3_requests(emulator) == []
    assert result.records["audit_events"]  # v2 goes on as before
    selected = run_v3(config)
    assert sorted(selected.records) == [V3]


def test_records_keep_the_whole_event_beside_typed_columns(emulator: Emulator) -> None:
    result = run_v3(tap_config(emulator, ["globex"], page_size=100))
    events = emulator.events("globex", "auditevents", version="v3")
    records = result.records[V3]
    assert [r["event"] for r in records] == events
    for record, event in zip(records, events, strict=True):
        target, *middle, verb = event["action"].split(".")
        assert record["event_id"] == event["uuid"]
        assert record["insert_time"] == normalise_timestamp(event["insert_time"])
        assert record["event_time"] == normalise_timestamp(event["timestamp"])
        assert (record["action"], record["action_target"], record["action_verb"]) == (
            event["action"],
            target,
            verb,
        )
        assert record["action_attribute"] == (middle[0] if middle else None)
        assert record["account_uuid"] == emulator.account("globex").account_uuid
        assert record["account_name"] == "globex"


def test_first_request_carries_size_and_window_then_only_page_tokens(
    emulator: Emulator,
) -> None:
    result = run_v3(tap_config(emulator, ["acme"], page_size=60, end_date="2040-01-01T00:00:00Z"))
    assert len(result.records[V3]) == 250
    first, *rest = v3_requests(emulator)
    assert set(first.params) == {"max_page_size", "start_time", "end_time"}
    assert first.params["max_page_size"] == "60"
    assert first.params["end_time"] == "2040-01-01T00:00:00Z"
    assert first.params["start_time"].endswith("Z")
    assert "start_time=" + first.params["start_time"].replace(":", "%3A") in first.query
    assert len(rest) == 4  # 60 + 60 + 60 + 60 + 10
    assert all(set(r.params) == {"page_token"} for r in rest)
    entry = partition(result.final_state, V3, "acme")
    assert set(entry) == {
        "context",
        "replication_key",
        "replication_key_value",
        "ids_at_insert_time",
    }
    assert entry["replication_key_value"] == result.records[V3][-1]["insert_time"]


def test_every_event_once_over_runs_with_new_and_late_events(emulator: Emulator) -> None:
    config = tap_config(emulator, page_size=40)
    landed: list[tuple[str, str]] = []
    state = None
    for step in range(4):
        result = run_v3(config, state)
        landed += v3_keys(result.records.get(V3, []))
        state = result.final_state
        emulator.add_events("acme", "auditevents", 3 + step, late=True)
        emulator.add_events("globex", "auditevents", 5)
        emulator.add_events("initech", "auditevents", 1 + step, late=True)
    landed += v3_keys(run_v3(config, state).records.get(V3, []))
    assert sorted(landed) == sorted(expected_keys(emulator))
    assert len(landed) == len(set(landed))
    again = run_v3(config, state=None)  # from scratch: the same events
    assert sorted(v3_keys(again.records[V3])) == sorted(landed)


def test_a_run_resumes_inside_an_instant_shared_by_several_events(emulator: Emulator) -> None:
    events = emulator.events("acme", "auditevents", version="v3")
    at = next(  # an instant on a whole second: start_time must be the second before it
        i
        for i in range(1, len(events) - 1)
        if events[i]["insert_time"] == events[i + 1]["insert_time"]
        and parse_ns(events[i]["insert_time"]) % 10**9 == 0
    )
    instant = normalise_timestamp(events[at]["insert_time"])
    state = {
        "bookmarks": {
            V3: {
                "partitions": [
                    {
                        "context": {"account_name": "acme"},
                        "replication_key": "insert_time",
                        "replication_key_value": instant,
                        "ids_at_insert_time": [events[at]["uuid"]],
                    }
                ]
            }
        }
    }
    result = run_v3(tap_config(emulator, ["acme"], page_size=50), state)
    assert [r["event_id"] for r in result.records[V3]] == [e["uuid"] for e in events[at + 1 :]]
    start = v3_requests(emulator)[0].params["start_time"]
    assert parse_ns(start) < parse_ns(events[at]["insert_time"]) <= parse_ns(start) + 10**9


def test_start_and_end_date_bound_the_first_run_on_insertion_time(emulator: Emulator) -> None:
    events = emulator.events("acme", "auditevents", version="v3")
    low, high = events[20]["insert_time"], events[200]["insert_time"]
    config = tap_config(emulator, ["acme"], page_size=70, start_date=low, end_date=high)
    result = run_v3(config)
    wanted = [
        e["uuid"] for e in events if parse_ns(low) <= parse_ns(e["insert_time"]) < parse_ns(high)
    ]
    first = [r["event_id"] for r in result.records[V3]]
    assert first == wanted
    assert events[20]["uuid"] in first
    assert events[200]["uuid"] not in first
    assert events[19]["uuid"] not in first or events[19]["insert_time"] == low
    # Later runs go on from the stored boundary, not from start_date.
    emulator.add_events("acme", "auditevents", 2)
    later = run_v3({**config, "end_date": None}, result.final_state)
    rest = [e["uuid"] for e in emulator.events("acme", "auditevents", version="v3")]
    rest = rest[rest.index(first[-1]) + 1 :]
    assert [r["event_id"] for r in later.records[V3]] == rest


def test_a_rejected_page_token_falls_back_to_the_last_insertion_time_without_a_gap(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.fail_next(PATH, "reject_cursor", after=2)  # the second page token
    with caplog.at_level(logging.WARNING):
        result = run_v3(tap_config(emulator, ["acme"], page_size=30))
    assert v3_keys(result.records[V3]) == [
        ("acme", e["uuid"]) for e in emulator.events("acme", "auditevents", version="v3")
    ]
    seen = v3_requests(emulator)
    assert [r.status for r in seen[:4]] == [200, 200, 400, 200]
    assert set(seen[3].params) == {"max_page_size", "start_time"}
    emitted = result.records[V3][59]["insert_time"]  # the last record of two pages
    assert parse_ns(seen[3].params["start_time"]) < parse_ns(emitted)
    assert "rejected the page token" in caplog.text
    assert "invalid page token" in caplog.text


def test_the_legacy_switch_speaks_the_earlier_names() -> None:
    with Emulator(seed=3, events=130, v3_legacy_names=True) as emu:
        config = tap_config(emu, ["acme"], page_size=50, v3_parameter_names="legacy")
        result = run_v3(config)
        assert v3_keys(result.records[V3]) == [
            ("acme", e["uuid"]) for e in emu.events("acme", "auditevents", version="v3")
        ]
        first, *rest = v3_requests(emu)
        assert set(first.params) == {"page_size", "start_time"}
        assert all(set(r.params) == {"next_page_token"} for r in rest)
        assert len(rest) == 2  # has_more false on the third page ends it, token or not
        emu.add_events("acme", "auditevents", 4, late=True)
        again = run_v3(config, result.final_state)
        assert len(again.records[V3]) == 4


def test_a_400_is_reported_with_the_apis_message(tmp_path: Path) -> None:
    with Emulator(seed=3, events=10, v3_legacy_names=True) as emu:
        config = tap_config(emu, ["acme"])
        catalog = tmp_path / "catalog.json"
        catalog.write_text(__import__("json").dumps(selecting(config, V3)))
        done = run_cli("--catalog", str(catalog), config=config, tmp_path=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "400" in done.stderr
    assert "unknown query parameter 'max_page_size'" in done.stderr


def test_a_token_without_audit_events_is_skipped_with_one_warning(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    token = emulator.mint_token("acme", features=["signinattempts"])
    config = {"token": token, "base_url": emulator.base_url}
    with caplog.at_level(logging.WARNING):
        result = run_v3(config)
    assert V3 not in result.records
    assert v3_requests(emulator) == []
    assert caplog.text.count(f"{V3}, account 'default': skipped") == 1


def test_a_skip_is_told_as_the_other_streams_tell_it_and_counted_in_the_run_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lacking = ("signinattempts",)
    specs = [AccountSpec("acme"), AccountSpec("globex", lacking), AccountSpec("initech", lacking)]
    with Emulator(seed=3, events=20, accounts=specs) as emu:
        caplog.set_level(logging.INFO)
        result = run_v3(tap_config(emu), None, "audit_events")
        assert {r.account for r in v3_requests(emu)} == {"acme"}
    assert sorted(result.records) == ["audit_events", V3]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    skips = {
        stream: [line for line in warnings if line.startswith(f"{stream}, ")]
        for stream in ("audit_events", V3)
    }
    assert len(skips["audit_events"]) == 1  # one line for both accounts
    assert skips[V3] == [line.replace("audit_events", V3) for line in skips["audit_events"]]
    assert "accounts 'globex', 'initech': skipped" in skips[V3][0]
    lines = [r.getMessage() for r in caplog.records]
    figures = json.loads(next(ln for ln in lines if ln.startswith("RUN SUMMARY: "))[13:])
    assert figures["streams"][V3]["skipped"] == figures["streams"]["audit_events"]["skipped"] == 2
    assert {"stream": V3, "account": "globex"} in figures["skipped_first"]
    told = next(ln for ln in lines if ln.startswith("  skipped, token lacks the feature"))
    assert "(4): " in told
    assert f"'initech' {V3}" in told


def test_reads_are_counted_in_the_run_summary_and_metrics_as_the_other_streams_are(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = run_v3(tap_config(emulator, page_size=100))
    lines = [r.getMessage() for r in caplog.records]
    figures = json.loads(next(ln for ln in lines if ln.startswith("RUN SUMMARY: "))[13:])
    seen = v3_requests(emulator)
    assert figures["streams"][V3] == {
        "read": 3,
        "records": len(result.records[V3]),
        "requests": len(seen),
        "skipped": 0,
        "failed": 0,
    }
    assert figures["records"] == len(result.records[V3])
    points = [
        json.loads(r.getMessage().removeprefix("METRIC: "))
        for r in caplog.records
        if r.name == "singer_sdk.metrics"
    ]
    sent = {
        p["tags"]["context"]["account_name"]: p["value"]
        for p in points
        if p["metric"] == "http_request_count" and p["tags"]["stream"] == V3
    }
    assert sent == {a.name: len(v3_requests(emulator, a.name)) for a in emulator.accounts}
    lagging = [p for p in points if p["metric"] == "event_lag_seconds"]
    assert sorted(p["tags"]["context"]["account_name"] for p in lagging) == sorted(sent)


@pytest.mark.usefixtures("fast_retries")
def test_a_failed_read_is_counted_failed_in_the_run_summary(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.fail_next(PATH, "503", count=50)
    caplog.set_level(logging.INFO)
    with pytest.raises(AccountsFailedError):
        run_v3(tap_config(emulator, ["acme"]))
    lines = [r.getMessage() for r in caplog.records]
    figures = json.loads(next(ln for ln in lines if ln.startswith("RUN SUMMARY: "))[13:])
    assert figures["streams"][V3]["failed"] == 1
    [failed] = figures["failed_first"]
    assert (failed["stream"], failed["account"]) == (V3, "acme")
    assert "503" in failed["reason"]


def test_a_spent_rate_limit_window_holds_the_token_instead_of_meeting_a_429(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Emulator(seed=3, events=100, rate_limit_per_minute=3) as emu:
        pauses: list[float] = []

        def pause(_budget: RateBudget, seconds: float) -> None:
            pauses.append(seconds)
            emu.reset_rate_limits()  # the window frees while the token waits

        monkeypatch.setattr(RateBudget, "pause", pause)
        result = run_v3(tap_config(emu, ["acme"], page_size=10))
        assert len(result.records[V3]) == 100
        assert [r.status for r in emu.requests if r.status == 429] == []
        assert pauses
        assert all(0 < p <= 60 for p in pauses)


def test_an_end_date_before_what_was_emitted_reads_nothing_and_fails_nothing(
    emulator: Emulator,
) -> None:
    config = tap_config(emulator, ["acme"], page_size=100)
    first = run_v3(config)
    events = emulator.events("acme", "auditevents", version="v3")
    bounded = {**config, "end_date": events[100]["insert_time"]}
    again = run_v3(bounded, first.final_state)
    assert V3 not in again.records
    assert len(v3_requests(emulator)) == 3  # the first run's pages only
    assert partition(again.final_state, V3, "acme") == partition(first.final_state, V3, "acme")
