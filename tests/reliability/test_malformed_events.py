"""A malformed event (no uuid, an unreadable timestamp) is emitted and never blocks its stream."""

from __future__ import annotations

import io
import json
import logging
from contextlib import redirect_stdout
from typing import Any

import pytest

from tap_onepassword.errors import ApiResponseError
from tap_onepassword.event_ids import surrogate_uuid
from tap_onepassword.tap import TapOnePassword
from tests.reliability.harness import mint_token
from tests.reliability.scripted_api import Reply, ScriptedEventsAPI

FEATURE = "signinattempts"


def good(n: int) -> dict[str, Any]:
    return {
        "uuid": f"V4SEH2KVJ72CEUVW75EFR{n:05d}",
        "timestamp": f"2025-11-03T09:00:{n:02d}.118Z",
        "category": "success",
    }


NO_UUID = {"timestamp": "2025-11-03T09:00:30Z", "category": "firewall_failed", "country": "AR"}
NULL_UUID = {"uuid": None, "timestamp": "2025-11-03T09:00:31Z", "category": "credentials_failed"}
BAD_TIME = {"uuid": "BADTIMEBADTIMEBADTIMEBADTI", "timestamp": "yesterday at noon"}
NUMBER_TIME = {"uuid": "NUMTIMENUMTIMENUMTIMENUMTI", "timestamp": 1762160400}


def script() -> list[Reply]:
    items = [good(1), NO_UUID, good(2), BAD_TIME, NULL_UUID, NUMBER_TIME, good(3)]
    body = {"cursor": "C1", "has_more": False, "items": items}
    return [Reply(200, json.dumps(body).encode())]


def sync(api: ScriptedEventsAPI, **settings: Any) -> tuple[list[dict[str, Any]], Any]:
    config = {
        "token": mint_token([api.host_port], features=[FEATURE]),
        "base_url": api.base_url,
        "start_date": "2025-11-01T00:00:00Z",
        **settings,
    }
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(out):
        TapOnePassword(config=config).sync_all()
    out.seek(0)
    messages = [json.loads(line) for line in out.read().splitlines()]
    records = [
        m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] != "introspection"
    ]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return records, states[-1]["bookmarks"]["sign_in_attempts"]["partitions"][0]


def test_malformed_events_are_emitted_with_a_stable_key_and_their_timestamp_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with ScriptedEventsAPI(features=[FEATURE], script={FEATURE: script()}) as api:
        records, state = sync(api)
    by_uuid = {r["uuid"]: r for r in records}
    assert len(records) == 7  # nothing dropped
    # No uuid (absent, or null): a surrogate from the event as sent, the same on every run.
    assert by_uuid[surrogate_uuid(NO_UUID)]["country"] == "AR"
    assert by_uuid[surrogate_uuid(NULL_UUID)]["category"] == "credentials_failed"
    assert surrogate_uuid(NO_UUID).startswith("surrogate-")
    assert surrogate_uuid(dict(NO_UUID)) == surrogate_uuid(NO_UUID)
    assert surrogate_uuid(NO_UUID) != surrogate_uuid(NULL_UUID)
    # An unreadable timestamp: null, its text kept; the bookmark ignores it.
    assert by_uuid[BAD_TIME["uuid"]]["timestamp"] is None
    assert by_uuid[BAD_TIME["uuid"]]["unreadable_timestamp"] == "yesterday at noon"
    assert by_uuid[NUMBER_TIME["uuid"]]["unreadable_timestamp"] == "1762160400"
    assert "unreadable_timestamp" not in by_uuid[good(1)["uuid"]]
    assert state["cursor"] == "C1"
    assert state["replication_key_value"] == "2025-11-03T09:00:31.000000000Z"
    # One warning for the stream and account, with the counts.
    warned = [m for m in caplog.messages if "malformed events" in m]
    assert len(warned) == 1
    assert "sign_in_attempts, account 'default'" in warned[0]
    assert "2 without a uuid" in warned[0]
    assert "2 with an unreadable timestamp" in warned[0]
    assert not [m for m in caplog.messages if "replication value is null" in m]


def test_the_same_malformed_event_gets_the_same_key_on_the_next_run() -> None:
    keys = []
    for _ in range(2):
        with ScriptedEventsAPI(features=[FEATURE], script={FEATURE: script()}) as api:
            records, _state = sync(api)
        keys.append(sorted(r["uuid"] for r in records))
    assert keys[0] == keys[1]


def test_strict_events_stops_at_the_first_malformed_event_as_before() -> None:
    with ScriptedEventsAPI(features=[FEATURE], script={FEATURE: script()}) as api:
        with pytest.raises(ApiResponseError, match="an event has no uuid"):
            sync(api, strict_events=True)
        timestamps_only = [good(1), BAD_TIME]
        api.script[FEATURE] = [
            Reply(
                200,
                json.dumps({"cursor": "C", "has_more": False, "items": timestamps_only}).encode(),
            )
        ]
        with pytest.raises(ApiResponseError, match="has no RFC 3339 timestamp"):
            sync(api, strict_events=True)
