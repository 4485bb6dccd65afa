"""Audit events v3 (beta): records that survive an evolving schema, and lenient rate headers."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

import onepassword_emulator.v3
from tap_onepassword.auditv3 import event_id, shape_record, split_action
from tap_onepassword.errors import ApiResponseError
from tap_onepassword.ratebudget import rate_limit_pause
from tests.support.runs import run_tap, selecting, tap_config

if TYPE_CHECKING:
    from onepassword_emulator import Emulator

V3 = "audit_events_v3"


@pytest.mark.parametrize(
    ("action", "parts"),
    [
        ("service-account.token.create", ("service-account", "token", "create")),
        ("vault.create", ("vault", None, "create")),
        ("item.password.history.view", ("item", "password.history", "view")),
        ("purge", (None, None, "purge")),
        (None, (None, None, None)),
    ],
)
def test_actions_split_into_target_attribute_and_verb(
    action: str | None, parts: tuple[str | None, ...]
) -> None:
    assert split_action(action) == parts


def test_an_event_without_an_id_gets_a_surrogate_that_follows_its_content() -> None:
    event = {"insert_time": "2026-01-01T00:00:00Z", "action": "vault.create", "actor": {"a": 1}}
    same = {"actor": {"a": 1}, "action": "vault.create", "insert_time": "2026-01-01T00:00:00Z"}
    other = {**event, "action": "vault.delete"}
    assert event_id(event) == event_id(same)
    assert event_id(event).startswith("sha256:")
    assert len(event_id(event)) == len("sha256:") + 64
    assert event_id(event) != event_id(other)
    assert event_id({**event, "id": "E1"}) == "E1"
    assert event_id({**event, "uuid": "U1"}) == "U1"


def test_unknown_top_level_fields_stay_in_the_whole_event() -> None:
    event = {"insert_time": "2026-01-01T00:00:00+01:00", "action": "a.b", "severity": "high"}
    record = shape_record(event, "acme", V3)
    assert record["event"] == event
    assert record["insert_time"] == "2025-12-31T23:00:00.000000000Z"
    assert record["event_time"] is None
    assert "severity" not in record


def test_an_event_without_an_insertion_time_is_reported() -> None:
    with pytest.raises(ApiResponseError, match="no RFC 3339 insert_time"):
        shape_record({"action": "a.b"}, "acme", V3)


def response_with(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.headers.update(headers)
    return response


@pytest.mark.parametrize(
    ("headers", "pause"),
    [
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "12"}, 12.0),
        ({"ratelimit-remaining": "0", "ratelimit-reset": "7"}, 7.0),
        ({"RATELIMIT-REMAINING": "0;w=60", "RateLimit-Reset": " 3 "}, 3.0),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "99999"}, 3600.0),
        ({"RateLimit-Remaining": "5", "RateLimit-Reset": "12"}, None),
        ({"RateLimit-Remaining": "0"}, None),
        ({"RateLimit-Remaining": "none", "RateLimit-Reset": "12"}, None),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "soon"}, None),
        ({}, None),
    ],
)
def test_rate_limit_headers_are_read_leniently(
    headers: dict[str, str], pause: float | None
) -> None:
    assert rate_limit_pause(response_with(headers)) == pause


def test_a_reset_given_as_an_epoch_time_counts_from_now() -> None:
    headers = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(time.time()) + 30)}
    pause = rate_limit_pause(response_with(headers))
    assert pause is not None
    assert 25 <= pause <= 31


def test_a_changed_beta_is_named_once_and_lands_whole(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The beta renames its id and adds a field: no id means surrogates, stable across runs."""
    render = onepassword_emulator.v3.render_v3

    def changed(*args: Any) -> dict[str, Any]:
        event = render(*args)
        event["ref"] = event.pop("uuid")
        event["severity"] = "high"
        return event

    monkeypatch.setattr(onepassword_emulator.v3, "render_v3", changed)
    config = tap_config(emulator, ["acme", "globex"], page_size=100)
    with caplog.at_level(logging.WARNING):
        first = run_tap(config, catalog=selecting(config, V3))
    records = first.records[V3]
    assert len(records) == 500
    assert all(r["event_id"].startswith("sha256:") for r in records)
    assert len({(r["account_name"], r["event_id"]) for r in records}) == 500
    assert all(r["event"]["severity"] == "high" and r["event"]["ref"] for r in records)
    assert caplog.text.count("top-level field(s) this tap has no column for: ref, severity") == 1
    again = run_tap(config, catalog=selecting(config, V3))
    assert [r["event_id"] for r in again.records[V3]] == [r["event_id"] for r in records]
