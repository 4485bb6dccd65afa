"""Request bodies (reset and continuing forms), the envelope and cursor behaviour."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from onepassword_emulator import Emulator

if TYPE_CHECKING:
    import requests

Bearer = Callable[[str], dict[str, str]]
OLD = "2020-01-01T00:00:00Z"


def _exact(event: dict) -> datetime:
    """Return an event's timestamp to the microsecond (enough for these comparisons)."""
    whole, _, fraction = event["timestamp"].removesuffix("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00") + timedelta(
        microseconds=int((fraction + "000000")[:6])
    )


class Client:
    """A minimal API client for the tests: posts bodies for one account and endpoint."""

    def __init__(self, emu: Emulator, http: requests.Session, account: str, path: str) -> None:
        self.url = emu.base_url + path
        self.http = http
        self.headers = {"Authorization": f"Bearer {emu.account(account).token}"}

    def post(self, body: object = None, *, data: bytes | None = None) -> requests.Response:
        if data is not None:
            return self.http.post(self.url, data=data, headers=self.headers, timeout=10)
        return self.http.post(self.url, json=body, headers=self.headers, timeout=10)

    def read_all(self, body: dict) -> tuple[list[dict], str, int]:
        page = self.post(body).json()
        items, pages = list(page["items"]), 1
        while page["has_more"]:
            page = self.post({"cursor": page["cursor"]}).json()
            items += page["items"]
            pages += 1
        return items, page["cursor"], pages


@pytest.fixture
def acme_sign_ins(emu: Emulator, http: requests.Session) -> Client:
    return Client(emu, http, "acme", "/api/v2/signinattempts")


@pytest.mark.parametrize("limit", [0, -1, 1001, 5000, "10", 10.5, 1.0, True, [], {}])
def test_a_limit_outside_1_to_1000_is_400(acme_sign_ins: Client, limit: object) -> None:
    response = acme_sign_ins.post({"limit": limit})
    assert response.status_code == 400
    assert set(response.json()) == {"Error"}
    assert response.json()["Error"]["Message"]


@pytest.mark.parametrize("limit", [1, 1000])
def test_limits_1_and_1000_are_accepted(acme_sign_ins: Client, limit: int) -> None:
    body = acme_sign_ins.post({"limit": limit, "start_time": OLD}).json()
    assert len(body["items"]) == limit


@pytest.mark.parametrize(
    "body",
    [
        {"start_time": "yesterday"},
        {"start_time": "2024-01-01"},
        {"end_time": "2024-01-01 00:00:00Z"},
        {"start_time": 1700000000},
        {"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"},
        {"cursor": 12},
    ],
)
def test_unparsable_times_and_fields_are_400(acme_sign_ins: Client, body: dict) -> None:
    assert acme_sign_ins.post(body).status_code == 400


@pytest.mark.parametrize("raw", [b"", b"not json", b"{", b"[]", b'"cursor"', b"null", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_400(acme_sign_ins: Client, raw: bytes) -> None:
    response = acme_sign_ins.post(data=raw)
    assert response.status_code == 400
    assert "Message" in response.json()["Error"]


def test_an_empty_object_reads_the_last_hour(emu: Emulator, acme_sign_ins: Client) -> None:
    recent = emu.add_events("acme", "signinattempts", 3)
    emu.advance_time(2 * 3600)
    newer = emu.add_events("acme", "signinattempts", 2)
    body = acme_sign_ins.post({}).json()
    assert [item["uuid"] for item in body["items"]] == [event["uuid"] for event in newer]
    assert body["has_more"] is False
    assert recent[0]["uuid"] not in {item["uuid"] for item in body["items"]}


def test_start_time_with_an_offset_equals_the_same_instant_in_z(
    emu: Emulator, acme_sign_ins: Client
) -> None:
    events = emu.events("acme", "signinattempts")
    middle = _exact(events[500]).replace(microsecond=0) + timedelta(seconds=1)
    as_z = middle.strftime("%Y-%m-%dT%H:%M:%SZ")
    as_offset = middle.astimezone(timezone(timedelta(hours=-3))).strftime("%Y-%m-%dT%H:%M:%S-03:00")
    first = acme_sign_ins.post({"start_time": as_z, "limit": 1000}).json()["items"]
    second = acme_sign_ins.post({"start_time": as_offset, "limit": 1000}).json()["items"]
    assert first == second
    assert [item["uuid"] for item in first] == [e["uuid"] for e in events if _exact(e) >= middle]
    assert 400 < len(first) < 600


def test_start_and_end_time_select_a_window(emu: Emulator, acme_sign_ins: Client) -> None:
    events = emu.events("acme", "signinattempts")

    start = _exact(events[200]).replace(microsecond=0) + timedelta(seconds=1)
    end = _exact(events[400]).replace(microsecond=0)
    items, _, _ = acme_sign_ins.read_all(
        {
            "limit": 50,
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    exact = [e["uuid"] for e in events if start <= _exact(e) < end]
    assert [item["uuid"] for item in items] == exact
    assert 150 < len(exact) < 250


def test_paging_returns_everything_once_in_ingestion_order(
    emu: Emulator, acme_sign_ins: Client
) -> None:
    items, _, pages = acme_sign_ins.read_all({"limit": 300, "start_time": OLD})
    assert [item["uuid"] for item in items] == [
        e["uuid"] for e in emu.events("acme", "signinattempts")
    ]
    assert pages == 4  # 300 + 300 + 300 + 100: has_more is false on the page that ends the data
    assert len({item["uuid"] for item in items}) == 1000


def test_the_limit_is_remembered_by_the_cursor(acme_sign_ins: Client) -> None:
    first = acme_sign_ins.post({"limit": 7, "start_time": OLD}).json()
    second = acme_sign_ins.post({"cursor": first["cursor"], "limit": 500}).json()
    assert len(first["items"]) == len(second["items"]) == 7


def test_the_final_cursor_later_returns_only_new_events_late_ones_included(
    emu: Emulator, acme_sign_ins: Client
) -> None:
    items, final, _ = acme_sign_ins.read_all({"limit": 1000, "start_time": OLD})
    idle = acme_sign_ins.post({"cursor": final}).json()
    assert idle == {"cursor": final, "has_more": False, "items": []}
    newest_served = max(_exact(item) for item in items)
    late = emu.add_events("acme", "signinattempts", 2, late=True)
    fresh = emu.add_events("acme", "signinattempts", 3)
    assert all(_exact(event) < newest_served for event in late)
    polled, again, _ = acme_sign_ins.read_all({"cursor": final})
    assert [item["uuid"] for item in polled] == [e["uuid"] for e in late + fresh]
    assert acme_sign_ins.post({"cursor": again}).json()["items"] == []


def test_late_events_older_than_start_time_still_reach_a_running_cursor(
    emu: Emulator, acme_sign_ins: Client
) -> None:
    newest = _exact(emu.events("acme", "signinattempts")[-1])
    start = (newest - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    items, final, _ = acme_sign_ins.read_all({"start_time": start})
    assert len(items) == 1
    late = emu.add_events("acme", "signinattempts", 1, late=True)
    assert _exact(late[0]) < newest - timedelta(seconds=1)
    polled, _, _ = acme_sign_ins.read_all({"cursor": final})
    assert [item["uuid"] for item in polled] == [late[0]["uuid"]]
    # A fresh query from the same start_time does not include it: it is older than start_time.
    assert late[0]["uuid"] not in {
        item["uuid"] for item in acme_sign_ins.read_all({"start_time": start})[0]
    }


def test_has_more_is_false_when_only_events_after_end_time_remain(
    emu: Emulator, acme_sign_ins: Client
) -> None:
    end = _exact(emu.events("acme", "signinattempts")[-1]) - timedelta(days=1)
    page = acme_sign_ins.post(
        {"start_time": OLD, "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "limit": 1000}
    ).json()
    assert page["has_more"] is False
    assert 950 < len(page["items"]) < 1000
    emu.add_events("acme", "signinattempts", 5)
    assert acme_sign_ins.post({"cursor": page["cursor"]}).json()["items"] == []


def test_cursors_are_bound_to_endpoint_and_account(emu: Emulator, http: requests.Session) -> None:
    v2 = Client(emu, http, "acme", "/api/v2/signinattempts")
    cursor = v2.post({"start_time": OLD}).json()["cursor"]
    for account, path in [
        ("acme", "/api/v1/signinattempts"),
        ("acme", "/api/v2/auditevents"),
        ("globex", "/api/v2/signinattempts"),
        ("initech", "/api/v2/signinattempts"),
    ]:
        response = Client(emu, http, account, path).post({"cursor": cursor})
        assert response.status_code == 400, (account, path)
        assert response.json()["Error"]["Message"] == "invalid cursor"
    assert v2.post({"cursor": cursor}).status_code == 200


def test_forged_cursors_are_400(acme_sign_ins: Client) -> None:
    cursor = acme_sign_ins.post({"start_time": OLD}).json()["cursor"]
    for forged in (
        cursor[:-2] + ("xx" if cursor[-2:] != "xx" else "yy"),
        "aGVsbG8hIGlzIGl0IG1lIHlvdSBhcmUgbG9va2luZyBmb3IK",
        "cursor_0",
        "%%%",
    ):
        assert acme_sign_ins.post({"cursor": forged}).status_code == 400


def test_rotating_the_secret_rejects_every_earlier_cursor(
    emu: Emulator, acme_sign_ins: Client
) -> None:
    cursor = acme_sign_ins.post({"start_time": OLD}).json()["cursor"]
    emu.rotate_secret()
    assert acme_sign_ins.post({"cursor": cursor}).status_code == 400
    fresh = acme_sign_ins.post({"start_time": OLD}).json()["cursor"]
    assert acme_sign_ins.post({"cursor": fresh}).status_code == 200


def test_a_restarted_emulator_keeps_tokens_but_rejects_old_cursors(http: requests.Session) -> None:
    with Emulator(seed=3, events=50) as first:
        client = Client(first, http, "acme", "/api/v2/auditevents")
        cursor = client.post({"start_time": OLD}).json()["cursor"]
        token = first.account("acme").token
    with Emulator(seed=3, events=50) as second:
        headers = {"Authorization": f"Bearer {token}"}
        url = second.base_url + "/api/v2/auditevents"
        assert (
            http.post(url, json={"start_time": OLD}, headers=headers, timeout=5).status_code == 200
        )
        response = http.post(url, json={"cursor": cursor}, headers=headers, timeout=5)
        assert response.status_code == 400


def test_an_empty_cursor_is_a_reset(acme_sign_ins: Client) -> None:
    assert (
        len(acme_sign_ins.post({"cursor": "", "start_time": OLD, "limit": 3}).json()["items"]) == 3
    )


def test_only_the_last_120_days_are_served(emu: Emulator, acme_sign_ins: Client) -> None:
    everything = emu.events("acme", "signinattempts")
    emu.advance_time(60 * 86_400)  # the 90-day history now reaches 150 days back
    kept = emu.events("acme", "signinattempts")
    cutoff = emu.now - timedelta(days=120)
    assert [e["uuid"] for e in kept] == [e["uuid"] for e in everything if _exact(e) >= cutoff]
    assert 600 < len(kept) < 730  # ages 60..120 days of a 60..150-day spread: two thirds
    items, _, _ = acme_sign_ins.read_all({"start_time": OLD, "limit": 1000})
    assert [item["uuid"] for item in items] == [e["uuid"] for e in kept]


def test_events_can_be_added_to_an_empty_stream(http: requests.Session) -> None:
    with Emulator(seed=5, events=0) as empty:
        client = Client(empty, http, "acme", "/api/v2/itemusages")
        first = client.post({"start_time": OLD}).json()
        assert first["items"] == []
        assert first["has_more"] is False
        late = empty.add_events("acme", "itemusages", 2, late=True)
        fresh = empty.add_events("acme", "itemusages", 1)
        polled = client.post({"cursor": first["cursor"]}).json()["items"]
        assert [item["uuid"] for item in polled] == [e["uuid"] for e in late + fresh]
        assert all(_exact(e) <= empty.now for e in late + fresh)
