"""The v3 beta route: the same audit events, polled on insertion time, with its own parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import requests

from onepassword_emulator import Emulator
from onepassword_emulator.rfc3339 import format_ns, parse_ns

if TYPE_CHECKING:
    from collections.abc import Callable

V3 = "/api/v3/auditevents"


def get(
    emu: Emulator, account: str, params: dict[str, Any] | str, token: str | None = None
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or emu.account(account).token}"}
    return requests.get(emu.base_url + V3, params=params, headers=headers, timeout=10)


def read_all(emu: Emulator, account: str, first: dict[str, Any], *, legacy: bool = False) -> list:
    token_param = "next_page_token" if legacy else "page_token"
    answer = get(emu, account, first)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    events = list(body["audit_events"])
    while body.get("next_page_token") and body.get("has_more", True):
        answer = get(emu, account, {token_param: body["next_page_token"]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        events += body["audit_events"]
    return events


@pytest.fixture
def emu() -> Any:
    with Emulator(seed=5, events=300) as emulator:
        yield emulator


def test_v3_serves_the_v2_audit_events_in_insertion_order(emu: Emulator) -> None:
    v2 = emu.events("globex", "auditevents", version="v2")
    served = read_all(emu, "globex", {"max_page_size": 70, "start_time": "2000-01-01T00:00:00Z"})
    assert served == emu.events("globex", "auditevents", version="v3")
    assert sorted(e["uuid"] for e in served) == sorted(e["uuid"] for e in v2)
    by_uuid = {e["uuid"]: e for e in v2}
    inserted = [parse_ns(e["insert_time"]) for e in served]
    assert inserted == sorted(inserted)
    for event in served:
        assert parse_ns(event["insert_time"]) > parse_ns(event["timestamp"])
        assert event["timestamp"] == by_uuid[event["uuid"]]["timestamp"]
        assert event["context"]["account"]["uuid"] == emu.account("globex").account_uuid
        assert 2 <= len(event["action"].split(".")) <= 3
    # Both action forms occur: target.verb and target.attribute.verb.
    assert {len(e["action"].split(".")) for e in served} == {2, 3}
    assert len(inserted) > len(set(inserted)), "some events share an insertion instant"


def test_late_events_get_later_insertion_times_than_everything_before(emu: Emulator) -> None:
    before = emu.events("acme", "auditevents", version="v3")
    late = emu.add_events("acme", "auditevents", 4, late=True, version="v3")
    newest_before = max(parse_ns(e["insert_time"]) for e in before)
    for event in late:
        assert parse_ns(event["insert_time"]) > newest_before
        assert parse_ns(event["timestamp"]) < max(parse_ns(e["timestamp"]) for e in before)
    after = read_all(emu, "acme", {"start_time": before[-1]["insert_time"]})
    assert [e["uuid"] for e in after] == [e["uuid"] for e in late]


def test_start_and_end_time_are_exclusive_bounds_on_insertion_time(emu: Emulator) -> None:
    events = emu.events("acme", "auditevents", version="v3")
    low, high = events[10]["insert_time"], events[40]["insert_time"]
    served = read_all(emu, "acme", {"start_time": low, "end_time": high, "max_page_size": 7})
    expected = [e for e in events if parse_ns(low) < parse_ns(e["insert_time"]) < parse_ns(high)]
    assert served == expected
    assert 20 < len(served) < 30


def test_the_last_page_carries_no_token_and_times_are_read_percent_encoded(
    emu: Emulator,
) -> None:
    events = emu.events("acme", "auditevents", version="v3")
    start = parse_ns(events[-3]["insert_time"]) - 1
    offset = format_ns(start + 3_600 * 10**9).replace("Z", "+01:00")
    answer = get(emu, "acme", f"start_time={quote(offset, safe='')}")
    assert answer.status_code == 200, answer.text
    assert "next_page_token" not in answer.json()
    assert answer.json()["audit_events"] == events[-3:]
    assert emu.requests[-1].params == {"start_time": offset}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_page_size": "1001"}, "max_page_size must be an integer from 0 to 1000"),
        ({"max_page_size": "-1"}, "max_page_size must be an integer from 0 to 1000"),
        ({"max_page_size": "ten"}, "max_page_size must be an integer from 0 to 1000"),
        ({"start_time": "yesterday"}, "start_time must be an RFC 3339 date-time"),
        ("start_time=2026-01-01T00:00:00+01:00", "start_time must be an RFC 3339 date-time"),
        ({"end_time": "2026-13-01T00:00:00Z"}, "end_time must be an RFC 3339 date-time"),
        ({"page_token": "abc", "start_time": "2026-01-01T00:00:00Z"}, "cannot be used with"),
        ({"page_token": "abc", "end_time": "2026-01-01T00:00:00Z"}, "cannot be used with"),
        ({"page_token": "abc"}, "invalid page token"),
        ({"page_size": "10"}, "unknown query parameter 'page_size'"),
        ({"next_page_token": "abc"}, "unknown query parameter 'next_page_token'"),
    ],
)
def test_bad_requests_answer_400_with_a_message(
    emu: Emulator, params: dict[str, str] | str, message: str
) -> None:
    answer = get(emu, "acme", params)
    assert answer.status_code == 400
    assert message in answer.json()["Error"]["Message"]


def test_a_page_token_is_bound_to_its_account_and_to_the_cursor_secret(emu: Emulator) -> None:
    first = get(emu, "acme", {"max_page_size": 5, "start_time": "2000-01-01T00:00:00Z"}).json()
    token = first["next_page_token"]
    assert get(emu, "globex", {"page_token": token}).status_code == 400
    assert get(emu, "acme", {"page_token": token}).status_code == 200
    emu.rotate_secret()
    rejected = get(emu, "acme", {"page_token": token})
    assert rejected.status_code == 400
    assert rejected.json()["Error"]["Message"] == "invalid page token"


def test_the_reject_cursor_fault_rejects_a_page_token_after_the_requests_it_lets_pass(
    emu: Emulator,
) -> None:
    emu.fail_next(V3, "reject_cursor", after=1)
    first = get(emu, "acme", {"max_page_size": 5, "start_time": "2000-01-01T00:00:00Z"})
    assert first.status_code == 200
    second = get(emu, "acme", {"page_token": first.json()["next_page_token"]})
    assert second.status_code == 400
    assert second.json()["Error"]["Message"] == "invalid page token"


def test_answers_carry_rate_limit_headers_and_the_budget_is_shared_with_v2(
    emu: Emulator, http: requests.Session, bearer: Callable[[str], dict[str, str]]
) -> None:
    token = emu.account("acme").token
    http.post(f"{emu.base_url}/api/v2/auditevents", json={"limit": 1}, headers=bearer(token))
    answer = get(emu, "acme", {"max_page_size": 1})
    assert answer.headers["RateLimit-Limit"] == "600"
    assert answer.headers["RateLimit-Remaining"] == "598"  # the v2 request counted too
    assert 0 < int(answer.headers["RateLimit-Reset"]) <= 60


def test_rate_limited_answers_say_when_the_window_frees() -> None:
    with Emulator(seed=5, events=10, rate_limit_per_minute=2) as emu:
        statuses = [get(emu, "acme", {"max_page_size": 1}) for _ in range(3)]
    assert [a.status_code for a in statuses] == [200, 200, 429]
    assert statuses[2].headers["RateLimit-Remaining"] == "0"
    assert int(statuses[2].headers["RateLimit-Reset"]) >= 1


def test_a_token_without_the_audit_events_feature_is_refused(emu: Emulator) -> None:
    token = emu.mint_token("acme", features=["signinattempts"])
    assert get(emu, "acme", {"max_page_size": 1}, token=token).status_code == 401


def test_v3_events_exist_for_audit_events_only(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="auditevents only"):
        emu.events("acme", "signinattempts", version="v3")


def test_the_legacy_switch_reads_the_earlier_names_and_answers_has_more() -> None:
    with Emulator(seed=5, events=120, v3_legacy_names=True) as emu:
        start = {"page_size": 50, "start_time": "2000-01-01T00:00:00Z"}
        served = read_all(emu, "acme", start, legacy=True)
        assert served == emu.events("acme", "auditevents", version="v3")
        last = get(emu, "acme", {"page_size": 1000, "start_time": "2000-01-01T00:00:00Z"}).json()
        assert last["has_more"] is False
        assert last["next_page_token"]  # always sent; has_more says whether to follow it
        added = emu.add_events("acme", "auditevents", 2, version="v3")
        again = get(emu, "acme", {"next_page_token": last["next_page_token"]}).json()
        assert again["audit_events"] == added
        refused = get(emu, "acme", {"max_page_size": 10})
        assert refused.status_code == 400
        assert "unknown query parameter 'max_page_size'" in refused.json()["Error"]["Message"]
        assert get(emu, "acme", {"page_size": 0}).status_code == 400


def test_events_added_before_v3_is_first_read_keep_their_insertion_instant() -> None:
    with Emulator(seed=6, events=50) as emu:
        emu.advance_time(5)
        late = {e["uuid"] for e in emu.add_events("acme", "auditevents", 3, late=True)}
        emu.advance_time(5)
        new = {e["uuid"] for e in emu.add_events("acme", "auditevents", 2)}
        events = emu.events("acme", "auditevents", version="v3")  # worked out only now
    inserted = [parse_ns(e["insert_time"]) for e in events]
    assert inserted == sorted(inserted)
    assert {e["uuid"] for e in events[-5:-2]} == late
    assert {e["uuid"] for e in events[-2:]} == new
    assert len({e["insert_time"] for e in events[-5:-2]}) == 1  # one batch, one instant
    assert parse_ns(events[-2]["insert_time"]) - parse_ns(events[-3]["insert_time"]) >= 4 * 10**9
