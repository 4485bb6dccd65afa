"""Paging by body cursor, progress lines, and reading Retry-After."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_onepassword.api import retry_after_seconds
from tap_onepassword.errors import ApiResponseError
from tap_onepassword.pages import EventsCursorPaginator
from tap_onepassword.progress import Progress


def response(
    body: dict | bytes, status: int = 200, headers: dict | None = None
) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer.headers.update(headers or {})
    return answer


def walk(pages: list[dict]) -> list[dict | None]:
    """The request bodies a paginator asks for, answering with `pages` in order."""
    paginator = EventsCursorPaginator()
    asked = []
    for page in pages:
        if paginator.finished:
            break
        asked.append(paginator.current_value)
        paginator.page_of(answer := response(page))
        paginator.advance(answer)
    assert paginator.finished
    return asked


def test_follows_the_cursor_while_has_more() -> None:
    asked = walk(
        [
            {"cursor": "a", "has_more": True, "items": [{}]},
            {"cursor": "b", "has_more": True, "items": []},  # empty but more may come: go on
            {"cursor": "c", "has_more": False, "items": [{}]},
            {"cursor": "never", "has_more": False, "items": []},
        ]
    )
    assert asked == [None, {"cursor": "a"}, {"cursor": "b"}]


def test_a_repeated_cursor_on_an_empty_page_is_asked_again_after_a_wait() -> None:
    """Legal, but nothing moved: answered like a server error, so `fetch` asks again with the
    same cursor after a growing wait (and ends the run with one line if it never moves),
    instead of ending the stream early without a word."""
    paginator = EventsCursorPaginator()
    paginator.advance(response({"cursor": "s", "has_more": True, "items": [{}]}))
    stall = response({"cursor": "s", "has_more": True, "items": []})
    with pytest.raises(RetriableAPIError, match="without moving its cursor"):
        paginator.page_of(stall)
    assert paginator.current_value == {"cursor": "s"}
    assert not paginator.finished


def test_a_stall_that_clears_goes_on() -> None:
    paginator = EventsCursorPaginator()
    paginator.advance(response({"cursor": "s", "has_more": True, "items": [{}]}))
    with pytest.raises(RetriableAPIError):
        paginator.page_of(response({"cursor": "s", "has_more": True, "items": []}))
    paginator.advance(moved := response({"cursor": "t", "has_more": False, "items": [{}]}))
    assert paginator.page_of(moved).cursor == "t"
    assert paginator.finished


def test_events_with_the_cursor_that_was_sent_are_refused() -> None:
    paginator = EventsCursorPaginator()
    paginator.advance(response({"cursor": "s", "has_more": True, "items": [{}]}))
    with pytest.raises(ApiResponseError, match="forever"):
        paginator.page_of(response({"cursor": "s", "has_more": True, "items": [{}]}))


def test_each_response_is_parsed_once() -> None:
    paginator = EventsCursorPaginator()
    answer = response({"cursor": "a", "has_more": False, "items": []})
    assert paginator.page_of(answer) is paginator.page_of(answer)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("soon", None),
        (None, None),
        ("inf", None),
        ("nan", None),
        ("1e12", 3600.0),  # capped at the API's hour window
    ],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    assert retry_after_seconds(response(b"", 429, headers)) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    header = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    waited = retry_after_seconds(response(b"", 429, {"Retry-After": header}))
    assert waited is not None
    assert 28 <= waited <= 30


def test_progress_logs_at_most_every_five_seconds(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    wall = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    progress = Progress(
        logging.getLogger("progress-test"),
        "audit_events",
        "acme",
        clock=lambda: now[0],
        now=lambda: wall,
    )
    caplog.set_level(logging.INFO, logger="progress-test")
    for second in range(1, 21):  # a page per second for 20 s
        now[0] = float(second)
        progress.page_done(1000, f"2025-01-01T11:{second:02d}:00.000000000Z")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4  # at 5, 10, 15 and 20 s
    assert lines[0] == (
        "audit_events, account 'acme': 5000 records so far (1000 records/s), "
        "newest event 55 min behind now"
    )
    assert progress.summary().startswith(
        "audit_events, account 'acme': 20000 records in 20 pages, 20.0 s (1000 records/s)"
    )
