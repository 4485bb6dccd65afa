"""A held page (events kept as text for read-ahead) parses to what decode_page returns, and
refuses every body decode_page refuses, with the same kind of error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from onepassword_emulator import Emulator
from tap_onepassword.errors import ApiResponseError
from tap_onepassword.pages import EventsCursorPaginator, decode_held_page, decode_page
from tap_onepassword.streams import EVENT_FEATURES

PAYLOADS = Path(__file__).parents[1] / "tap" / "fixtures"


def _emulator_bodies() -> list[bytes]:
    bodies = []
    with Emulator(seed=3, events=40) as emu:
        for account in emu.accounts:
            for feature in account.features:
                body = {"limit": 25, "start_time": "2000-01-01T00:00:00Z"}
                answer = requests.post(
                    f"{emu.base_url}/api/v2/{feature}",
                    json=body,
                    headers={"Authorization": f"Bearer {account.token}"},
                    timeout=10,
                )
                bodies.append(answer.content)
    return bodies


def _fixture_bodies() -> list[bytes]:
    bodies = []
    for version in ("v1", "v2"):
        payloads = json.loads((PAYLOADS / f"payloads-{version}.json").read_text())
        for feature in EVENT_FEATURES.values():
            bodies += [json.dumps(page).encode() for page in payloads.get(feature, [])]
    return bodies


def test_held_pages_parse_to_the_pages_decode_page_returns() -> None:
    bodies = _emulator_bodies() + _fixture_bodies()
    assert len(bodies) > 10
    for body in bodies:
        held = decode_held_page(body)
        assert held.parsed() == decode_page(body)
        assert held.empty == decode_page(body).empty


@pytest.mark.parametrize(
    ("body", "empty"),
    [
        (b'{"cursor":"c","has_more":true,"items":[]}', True),
        (b'{"items": [ \n ], "has_more": true, "cursor": "c"}', True),
        (b'{"cursor":"c","has_more":false,"items":[{}]}', False),
        (b'{"cursor":"c","has_more":false,"items":[ {"a": 1} ]}', False),
    ],
)
def test_an_empty_held_page_is_recognised(body: bytes, *, empty: bool) -> None:
    assert decode_held_page(body).empty is empty
    assert decode_page(body).empty is empty


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"cursor":"c","has_more":true,"items":[{"a":1}', RetriableAPIError),  # cut short
        (b'{"cursor":"c","has_more":true,"items":[{"a":tru}]}', RetriableAPIError),
        (b'{"cursor":"c","has_more":true,"items":[{"a":"\xff\xfe"}]}', RetriableAPIError),
        (b"<html>502 Bad Gateway</html>", RetriableAPIError),
        (b'{"cursor":"c","has_more":"yes","items":[]}', ApiResponseError),
        (b'{"has_more":true,"items":[]}', ApiResponseError),
    ],
)
def test_a_broken_body_is_refused_like_decode_page_refuses_it(body: bytes, error: type) -> None:
    with pytest.raises(error):
        decode_page(body)
    with pytest.raises(error):
        decode_held_page(body)


def test_events_that_are_not_objects_fail_when_parsed_with_decode_pages_message() -> None:
    body = b'{"cursor":"c","has_more":false,"items":[{"a":1}, 7]}'
    with pytest.raises(ApiResponseError) as direct:
        decode_page(body)
    held = decode_held_page(body)  # the envelope is fine; the events are parsed later
    with pytest.raises(ApiResponseError) as later:
        held.parsed()
    assert str(later.value) == str(direct.value)


def test_the_paginator_follows_held_pages_like_parsed_ones() -> None:
    held = EventsCursorPaginator(decode_held_page)
    parsed = EventsCursorPaginator(decode_page)
    body = b'{"cursor":"next","has_more":true,"items":[{"uuid":"A"}]}'
    answer = requests.Response()
    answer.status_code = 200
    answer._content = body
    assert held.page_of(answer).parsed() == parsed.page_of(answer)
    held.advance(answer)
    parsed.advance(answer)
    assert held.current_value == parsed.current_value == {"cursor": "next"}
