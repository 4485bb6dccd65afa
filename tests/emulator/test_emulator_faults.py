"""Faults on demand, from Python and over HTTP, and the request log."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from onepassword_emulator import Emulator

if TYPE_CHECKING:
    from collections.abc import Callable

PATH = "/api/v2/itemusages"
OLD = "2020-01-01T00:00:00Z"


@pytest.fixture
def call(emu: Emulator, http: requests.Session) -> Callable[..., requests.Response]:
    """POST a body to an endpoint of acme (default: v2 item usages)."""
    headers = {"Authorization": f"Bearer {emu.account('acme').token}"}

    def post(body: object = None, path: str = PATH, timeout: float = 5) -> requests.Response:
        return http.post(
            emu.base_url + path,
            json={"start_time": OLD} if body is None else body,
            headers=headers,
            timeout=timeout,
        )

    return post


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_server_errors_for_the_next_n_requests(
    emu: Emulator, call: Callable[..., requests.Response], status: str
) -> None:
    emu.fail_next(PATH, status, count=2)
    first, second, third = call(), call(), call()
    assert first.status_code == second.status_code == int(status)
    assert "Message" in first.json()["Error"]
    assert third.status_code == 200
    assert call(path="/api/v1/itemusages").status_code == 200
    assert [r.fault for r in emu.requests] == [status, status, None, None]


def test_429_with_and_without_retry_after(
    emu: Emulator, call: Callable[..., requests.Response]
) -> None:
    emu.fail_next(PATH, "429")
    emu.fail_next(PATH, "429", retry_after=7)
    bare, timed = call(), call()
    assert bare.status_code == timed.status_code == 429
    assert "Retry-After" not in bare.headers
    assert timed.headers["Retry-After"] == "7"
    assert bare.json() == {"Error": {"Message": "Too Many Requests"}}


def test_a_wildcard_fault_hits_any_api_path(
    emu: Emulator, call: Callable[..., requests.Response]
) -> None:
    emu.fail_next("*", "500", count=2)
    assert call(path="/api/v1/signinattempts").status_code == 500
    assert call(path="/api/v2/auditevents").status_code == 500
    assert call(path="/api/v2/auditevents").status_code == 200


def test_connection_reset(emu: Emulator, call: Callable[..., requests.Response]) -> None:
    emu.fail_next(PATH, "reset")
    with pytest.raises(requests.ConnectionError):
        call()
    assert call().status_code == 200
    assert emu.requests[0].status == 0
    assert emu.requests[0].account == "acme"


def test_hang_then_answer(emu: Emulator, call: Callable[..., requests.Response]) -> None:
    emu.fail_next(PATH, "hang", seconds=0.4)
    started = time.monotonic()
    assert call().status_code == 200
    assert time.monotonic() - started >= 0.4
    emu.fail_next(PATH, "hang", seconds=30)
    with pytest.raises(requests.Timeout):
        call(timeout=0.3)


def test_truncated_bodies(emu: Emulator, call: Callable[..., requests.Response]) -> None:
    emu.fail_next(PATH, "truncate")
    cut = call()
    assert cut.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        cut.json()
    emu.fail_next(PATH, "truncate", incomplete=True)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        call()
    assert call().status_code == 200


def test_empty_page_keeps_the_cursor(emu: Emulator, call: Callable[..., requests.Response]) -> None:
    first = call({"start_time": OLD, "limit": 10}).json()
    emu.fail_next(PATH, "empty_page")
    empty = call({"cursor": first["cursor"]}).json()
    assert empty == {"cursor": first["cursor"], "has_more": True, "items": []}
    second = call({"cursor": empty["cursor"]}).json()
    assert len(second["items"]) == 10
    assert second["items"][0]["uuid"] == emu.events("acme", "itemusages")[10]["uuid"]
    emu.fail_next(PATH, "empty_page")
    reset = call({"start_time": OLD, "limit": 4}).json()
    assert reset["items"] == []
    assert reset["has_more"] is True
    assert [i["uuid"] for i in call({"cursor": reset["cursor"]}).json()["items"]] == [
        e["uuid"] for e in emu.events("acme", "itemusages")[:4]
    ]


def test_reject_cursor(emu: Emulator, call: Callable[..., requests.Response]) -> None:
    cursor = call().json()["cursor"]
    emu.fail_next(PATH, "reject_cursor")
    rejected = call({"cursor": cursor})
    assert rejected.status_code == 400
    assert rejected.json() == {"Error": {"Message": "invalid cursor"}}
    assert call({"cursor": cursor}).status_code == 200


@pytest.mark.parametrize(
    ("args", "params", "message"),
    [
        (("/api/v2/itemusages", "418"), {}, "unknown fault"),
        (("/api/v2/itemusages", "500", 0), {}, "count"),
        (("/api/v2/itemusages", "500"), {"seconds": 3}, "no parameter"),
        (("api/v2/itemusages", "500"), {}, "path"),
        (("/api/v2/itemusages", "hang"), {"seconds": "long"}, "seconds"),
        (("/api/v2/itemusages", "429"), {"retry_after": -1}, "retry_after"),
    ],
)
def test_bad_fault_requests_are_refused(
    emu: Emulator, args: tuple, params: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        emu.fail_next(*args, **params)


def test_the_request_log(
    emu: Emulator, http: requests.Session, call: Callable[..., requests.Response]
) -> None:
    call({"limit": 3, "start_time": OLD})
    http.get(f"{emu.base_url}/api/auth/introspect", timeout=5)
    http.post(f"{emu.base_url}/api/v2/nowhere", data=b"x", timeout=5)
    http.get(f"{emu.base_url}/_emulator/requests", timeout=5)  # control requests are not logged
    log = emu.requests
    assert [(r.method, r.path, r.status, r.account) for r in log] == [
        ("POST", PATH, 200, "acme"),
        ("GET", "/api/auth/introspect", 401, None),
        ("POST", "/api/v2/nowhere", 404, None),
    ]
    assert log[0].body == {"limit": 3, "start_time": OLD}
    assert log[0].user_agent.startswith("python-requests")
    assert log[0].cpu_seconds > 0
    assert log[1].body is None
    assert log[0].time <= log[1].time <= emu.now
    emu.clear_requests()
    assert emu.requests == []


def test_latency_counts_from_the_request_not_from_the_end_of_its_handling(
    http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An answer leaves latency_ms after its request arrived, however long the handling took
    # (within the latency): a benchmark's ideal of pages x latency is then reachable.
    with Emulator(seed=2, events=10, latency_ms=400) as emu:
        handle = emu.service.handle

        def slow_handle(*args: Any) -> Any:
            time.sleep(0.3)
            return handle(*args)

        monkeypatch.setattr(emu.service, "handle", slow_handle)
        started = time.monotonic()
        answer = http.get(f"{emu.base_url}/api/v2/auth/introspect", timeout=5)
        took = time.monotonic() - started
    assert answer.status_code == 401  # no token: still handled, slowly
    assert 0.4 <= took < 0.65  # not 0.3 + 0.4


def test_latency_is_added_to_every_api_request(http: requests.Session) -> None:
    with Emulator(seed=2, events=10, latency_ms=250) as emu:
        started = time.monotonic()
        http.get(f"{emu.base_url}/api/v2/auth/introspect", timeout=5)
        assert time.monotonic() - started >= 0.25
        started = time.monotonic()
        http.get(f"{emu.base_url}/_emulator/time", timeout=5)
        assert time.monotonic() - started < 0.25
