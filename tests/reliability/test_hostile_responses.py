"""Hostile responses: malformed envelopes and items are accepted or end in one clear error.

Whatever a server sends, the tap must never print a traceback, never store or follow a cursor
taken from an answer it could not fully trust, and never write a STATE whose cursor lies past a
record it did not emit. Unknown fields and enum values must be accepted, with unknown nested keys
passed through unchanged. Answers come from a scripted loopback server (``scripted_api.py``).
"""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.harness import (
    ForkServer,
    TapResult,
    assert_clean_failure,
    assert_no_traceback,
    run_tap,
)
from tests.reliability.scripted_api import Exchange, Reply, ScriptedEventsAPI
from tests.support.tokens import mint_token

FEATURE = "signinattempts"
STREAM = "sign_in_attempts"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
BASE_ITEM: dict[str, Any] = {
    "uuid": "V4SEH2KVJ72CEUVW75EFR6ED00",
    "session_uuid": "SYWB5WKH7DNSIPZZ7FK4ZRI3R2",
    "timestamp": "2025-11-03T09:14:27.118Z",
    "category": "success",
    "type": "credentials_ok",
    "country": "DE",
    "details": None,
    "target_user": {
        "uuid": "WYOJFLJOOA7LQSAJ2XUID5ZZZZ",
        "name": "Mara Lindqvist",
        "email": "mara.lindqvist@example.org",
    },
    "client": {
        "app_name": "1Password Browser Extension",
        "app_version": "81080048",
        "platform_name": "Firefox",
        "platform_version": "133.0",
        "os_name": "Linux",
        "os_version": "6.8",
        "ip_address": "198.51.100.23",
    },
    "location": {
        "country": "Germany",
        "region": "Berlin",
        "city": "Berlin",
        "latitude": 52.52,
        "longitude": 13.405,
    },
}


def item(n: int, **changes: Any) -> dict[str, Any]:
    """A valid sign-in attempt with a unique uuid, then ``changes`` applied (None deletes)."""
    out = copy.deepcopy(BASE_ITEM)
    out["uuid"] = f"V4SEH2KVJ72CEUVW75EFR{n:05d}"
    out["timestamp"] = f"2025-11-03T09:{n // 60 % 60:02d}:{n % 60:02d}.118Z"
    for key, value in changes.items():
        if value is _DELETE:
            out.pop(key, None)
        else:
            out[key] = value
    return out


_DELETE = object()


def page(cursor: str, items: list[Any], *, has_more: bool = True, **extra: Any) -> Reply:
    """A well-formed envelope."""
    return Reply(
        200, json.dumps({"cursor": cursor, "has_more": has_more, "items": items, **extra}).encode()
    )


@dataclass
class Verdict:
    """What one run did with the script."""

    result: TapResult
    api: ScriptedEventsAPI


def run_script(forks: ForkServer, replies: list[Reply]) -> Verdict:
    """Serve ``replies`` to a fresh tap run against a fresh server; return what happened."""
    with ScriptedEventsAPI(features=[FEATURE], script={FEATURE: list(replies)}) as api:
        with tempfile.TemporaryDirectory() as tmp:
            config = {
                "token": mint_token([api.host_port], features=[FEATURE]),
                "base_url": api.base_url,
                "request_timeout": 5,
            }
            result = forks.run(Path(tmp), config, timeout=120)
        return Verdict(result, api)


def envelope_ok(reply: Reply) -> bool:
    """An answer whose cursor may be followed: 200, a JSON object, typed keys, object items.

    Following it (read-ahead does, before the items are looked at) is harmless; storing its
    cursor in state is another matter, see ``page_ok``.
    """
    if reply.status != 200:
        return False
    body = _json_or_none(reply.body)
    if not isinstance(body, dict):
        return False
    if not isinstance(body.get("cursor"), str) or not body["cursor"]:
        return False
    if not isinstance(body.get("has_more"), bool) or not isinstance(body.get("items"), list):
        return False
    return all(isinstance(i, dict) for i in body["items"])


def page_ok(reply: Reply) -> bool:
    """An answer whose cursor may go into state once its events were emitted: every item has a
    string uuid and a string timestamp."""
    return envelope_ok(reply) and all(
        isinstance(i.get("uuid"), str) and isinstance(i.get("timestamp"), str)
        for i in json.loads(reply.body)["items"]
    )


def served_cursors(api: ScriptedEventsAPI) -> dict[str, list[int]]:
    """Every cursor string the server handed out, with the exchanges that carried it."""
    out: dict[str, list[int]] = {}
    for index, exchange in enumerate(api.data_exchanges()):
        assert exchange.reply is not None
        body = _json_or_none(exchange.reply.body)
        if isinstance(body, dict) and isinstance(body.get("cursor"), str):
            out.setdefault(body["cursor"], []).append(index)
    return out


def _json_or_none(raw: bytes) -> Any:
    """Parse strictly: a lone surrogate escape ("\\ud800") is valid JSON syntax but no text,
    and a tap may (msgspec does) refuse such a body like any broken one."""
    try:
        value = json.loads(raw.decode("utf-8"))
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError):
        return None
    return value


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None


def strings_in(value: Any) -> list[str]:
    """Every string anywhere inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def check_invariants(verdict: Verdict) -> None:
    """The promises that hold for any answer whatsoever."""
    result, api = verdict.result, verdict.api
    assert_no_traceback(result)
    assert not result.output.other_lines, (
        f"non-Singer lines on stdout: {result.output.other_lines[:3]}"
    )
    if result.returncode != 0:
        assert_clean_failure(result)
    cursors = served_cursors(api)
    exchanges = api.data_exchanges()
    check_no_invented_cursor_sent(exchanges, cursors)
    emitted = check_state_never_ahead_of_records(result, exchanges, cursors)
    check_records_are_served_and_complete(result, exchanges, emitted)


def check_no_invented_cursor_sent(exchanges: list[Exchange], cursors: dict[str, list[int]]) -> None:
    """Only cursors the server handed out are sent back.

    Following one from an answer whose items turn out malformed is harmless (read-ahead may
    do it before the items are looked at): a request reads, only STATE commits, and that is
    checked separately.
    """
    for exchange in exchanges:
        body = exchange.json_body()
        if isinstance(body, dict) and "cursor" in body:
            sent = body["cursor"]
            assert sent in cursors, f"the tap sent a cursor it was never given: {sent!r}"


def check_state_never_ahead_of_records(
    result: TapResult, exchanges: list[Exchange], cursors: dict[str, list[int]]
) -> set[str]:
    """No STATE holds a cursor before every event of its page (and earlier pages) was emitted.

    When a cursor was served more than once, the earliest sound page carrying it is the one
    the STATE may stand for (the weakest reading, so no false alarm).

    Returns:
        The uuids emitted.
    """
    emitted: set[str] = set()
    for message in result.output.messages:
        if message.get("type") == "RECORD" and message.get("stream") == STREAM:
            emitted.add(str(message["record"].get("uuid")))
        if message.get("type") != "STATE":
            continue
        for value in (v for v in strings_in(message["value"]) if v in cursors):
            sound = [i for i in cursors[value] if page_ok(_reply(exchanges[i]))]
            assert sound, f"STATE holds a cursor from a malformed answer: {value!r}"
            needed = {
                item["uuid"]
                for e in exchanges[: sound[0] + 1]
                if page_ok(_reply(e))
                for item in json.loads(_reply(e).body)["items"]
            }
            assert needed <= emitted, (
                f"STATE with cursor {value!r} written before events "
                f"{sorted(needed - emitted)[:3]} of that or an earlier page"
            )
    return emitted


def _reply(exchange: Exchange) -> Reply:
    assert exchange.reply is not None
    return exchange.reply


def check_records_are_served_and_complete(
    result: TapResult, exchanges: list[Exchange], emitted: set[str]
) -> None:
    """No record is invented; a finished run lands every trusted item and the final cursor."""
    served_uuids: set[str] = set()
    trusted_uuids: set[str] = set()
    for e in exchanges:
        assert e.reply is not None
        body = _json_or_none(e.reply.body)
        if isinstance(body, dict) and isinstance(body.get("items"), list):
            uuids = {
                i["uuid"]
                for i in body["items"]
                if isinstance(i, dict) and isinstance(i.get("uuid"), str)
            }
            served_uuids |= uuids
            if page_ok(e.reply):
                trusted_uuids |= uuids
    for record in result.output.records(STREAM):
        assert isinstance(record.get("uuid"), str), f"a record without a string uuid: {record!r}"
        assert record["uuid"] in served_uuids, f"a record the server never sent: {record['uuid']!r}"
        assert _is_datetime(record.get("timestamp")), f"a record with a bad timestamp: {record!r}"
    if result.returncode == 0:
        missing = trusted_uuids - emitted
        assert not missing, f"exit 0 but trusted events never emitted: {sorted(missing)[:5]}"
        final = result.output.last_state()
        assert final is not None
        assert f"END-{FEATURE}" in strings_in(final), "exit 0 without reaching the final cursor"


# ---- fixed cases: each category at least once, with its expected outcome ----------------------

ACCEPTED: list[tuple[str, list[Reply]]] = [
    ("unknown-envelope-field", [page("C1", [item(1)], next_poll_hint=5)]),
    ("unknown-enum-values", [page("C1", [item(1, category="quantum_failed", type="psychic_ok")])]),
    (
        "unknown-nested-field",
        [page("C1", [item(1, client={**BASE_ITEM["client"], "zz_gpu": {"v": 1}})])],
    ),
    ("unknown-top-level-field", [page("C1", [item(1, zz_risk_score=0.93)])]),
    ("huge-string", [page("C1", [item(1, country="Z" * 300_000)])]),
    (
        "non-ascii-text",
        [page("C1", [item(1, target_user={**BASE_ITEM["target_user"], "name": "Zoë 😀 李"})])],
    ),
    ("details-object-and-null", [page("C1", [item(1, details={"value": "Europe"}), item(2)])]),
    ("location-absent", [page("C1", [item(1, location=_DELETE)])]),
    ("empty-page-has-more-true", [page("C1", []), page("C2", [item(1)])]),
    (
        "offset-and-nanosecond-timestamps",
        [page("C1", [item(1, timestamp="2025-11-03T06:14:27.123456789-03:00")])],
    ),
]


@pytest.mark.parametrize("replies", [pytest.param(r, id=i) for i, r in ACCEPTED])
def test_harmless_surprises_are_accepted(tap_forks: ForkServer, replies: list[Reply]) -> None:
    verdict = run_script(tap_forks, replies)
    check_invariants(verdict)
    assert verdict.result.returncode == 0, verdict.result.stderr[-3000:]
    served = [i for r in replies for i in json.loads(r.body)["items"]]
    records = {r["uuid"]: r for r in verdict.result.output.records(STREAM)}
    assert set(records) == {i["uuid"] for i in served}
    for original in served:
        record = records[original["uuid"]]
        for key, value in original.items():
            if key == "timestamp" or key.startswith("zz_"):
                continue
            assert record[key] == value, f"{key} changed: {record[key]!r} != {value!r}"


def test_unknown_top_level_field_is_reported_by_name(tap_forks: ForkServer) -> None:
    verdict = run_script(
        tap_forks, [page("C1", [item(1, zz_risk_score=1), item(2, zz_risk_score=2)])]
    )
    assert verdict.result.returncode == 0, verdict.result.stderr[-3000:]
    mentions = [line for line in verdict.result.stderr.splitlines() if "zz_risk_score" in line]
    assert len(mentions) == 1, f"expected one warning naming the field, got {mentions!r}"


REJECTED: list[tuple[str, list[Reply]]] = [
    ("item-without-uuid", [page("C1", [item(1), item(2, uuid=_DELETE)])]),
    ("item-uuid-null", [page("C1", [item(1, uuid=None)])]),
    ("item-uuid-int", [page("C1", [item(1, uuid=12345)])]),
    ("item-without-timestamp", [page("C1", [item(1, timestamp=_DELETE)])]),
    ("item-timestamp-garbage", [page("C1", [item(1, timestamp="yesterday at noon")])]),
    ("item-timestamp-int", [page("C1", [item(1, timestamp=1730625267)])]),
    (
        "item-timestamp-february-30",
        [page("C1", [item(1, timestamp="2025-02-30T10:00:00.000000000Z")])],
    ),
    (
        "item-timestamp-february-30-ms",
        [page("C1", [item(1, timestamp="2025-02-30T10:00:00.123Z")])],
    ),
    ("item-timestamp-april-31", [page("C1", [item(1, timestamp="2025-04-31T10:00:00Z")])]),
    ("item-timestamp-year-0", [page("C1", [item(1, timestamp="0000-01-01T00:00:00Z")])]),
    (
        "item-timestamp-february-29-not-leap",
        [page("C1", [item(1, timestamp="2025-02-29T10:00:00.5Z")])],
    ),
    ("item-not-an-object", [page("C1", [item(1), "surprise"])]),
    ("item-lone-surrogate", [page("C1", [item(1), item(2, country="X\ud800Y")])]),
    (
        "envelope-without-cursor",
        [Reply(200, json.dumps({"has_more": True, "items": [item(1)]}).encode())],
    ),
    (
        "envelope-without-has-more",
        [Reply(200, json.dumps({"cursor": "C1", "items": [item(1)]}).encode())],
    ),
    (
        "envelope-without-items",
        [Reply(200, json.dumps({"cursor": "C1", "has_more": False}).encode())],
    ),
    (
        "envelope-cursor-int",
        [Reply(200, json.dumps({"cursor": 7, "has_more": True, "items": []}).encode())],
    ),
    (
        "envelope-has-more-string",
        [
            Reply(
                200, json.dumps({"cursor": "C1", "has_more": "false", "items": [item(1)]}).encode()
            )
        ],
    ),
    (
        "envelope-items-object",
        [Reply(200, json.dumps({"cursor": "C1", "has_more": True, "items": {"a": 1}}).encode())],
    ),
    ("envelope-a-list", [Reply(200, json.dumps([item(1)]).encode())]),
    ("envelope-null", [Reply(200, b"null")]),
]


@pytest.mark.parametrize("replies", [pytest.param(r, id=i) for i, r in REJECTED])
def test_malformed_answers_end_the_run_with_one_clear_error(
    tap_forks: ForkServer, replies: list[Reply]
) -> None:
    """Every malformed answer is served on every retry, so the tap cannot retry past it."""
    verdict = run_script(tap_forks, replies * 12)
    check_invariants(verdict)
    assert_clean_failure(verdict.result)


def test_a_cursor_that_does_not_move_is_asked_again_then_reported(tap_forks: ForkServer) -> None:
    """Empty pages with has_more and the cursor that was sent: legal for a while (the tap asks
    again after a wait), but a run that never gets past them must say so, not end as if done."""
    recovered = run_script(
        tap_forks, [page("C1", [item(1)]), *[page("C1", [])] * 3, page("C2", [item(2)])]
    )
    check_invariants(recovered)
    assert recovered.result.returncode == 0, recovered.result.stderr[-3000:]
    assert len(recovered.result.output.records(STREAM)) == 2
    stuck = run_script(tap_forks, [page("C1", [item(1)]), *[page("C1", [])] * 40])
    check_invariants(stuck)
    assert_clean_failure(stuck.result, "cursor")


def test_events_under_the_cursor_that_was_sent_end_the_run(tap_forks: ForkServer) -> None:
    """Following a cursor that hands back itself with new events would loop forever."""
    verdict = run_script(tap_forks, [page("C1", [item(1)]), page("C1", [item(2)])] * 6)
    check_invariants(verdict)
    assert_clean_failure(verdict.result, "cursor")


@pytest.mark.parametrize("header", ["inf", "nan", "1e12", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_an_absurd_retry_after_is_capped(tmp_path: Path, header: str) -> None:
    """A 429 asking to wait forever (or nonsense) must not stall the run for good: at most the
    API's hour window, then on (the warped clock makes the wait instant; the log keeps it)."""
    refusal = Reply(429, b'{"Error":{"Message":"slow down"}}', headers={"Retry-After": header})
    with ScriptedEventsAPI(
        features=[FEATURE], script={FEATURE: [refusal, page("C1", [item(1)])]}
    ) as api:
        config = {
            "token": mint_token([api.host_port], features=[FEATURE]),
            "base_url": api.base_url,
        }
        log = tmp_path / "sleeps.log"
        result = run_tap(tmp_path, config, sleep_log=log, timeout=60)
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.output.records(STREAM)) == 1
    waits = [float(line.split()[1]) for line in log.read_text().splitlines()]
    assert waits, "the tap did not wait at all after a 429"
    assert max(waits) <= 3600


# ---- property-based fuzzing -------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
ITEM_KEYS = sorted(BASE_ITEM)


@st.composite
def hostile_items(draw: st.DrawFn, n: int) -> Any:
    """An item: valid, or with one to three hostile changes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    out = item(n)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*ITEM_KEYS, "zz_new", "client", "target_user"]))
        how = draw(st.sampled_from(["delete", "replace", "huge", "nested_extra"]))
        if how == "delete":
            out.pop(key, None)
        elif how == "replace":
            out[key] = draw(json_values)
        elif how == "huge":
            out[key] = draw(st.sampled_from(["x", "é", "😀", "\u0000"])) * draw(
                st.integers(1000, 60_000)
            )
        elif isinstance(out.get(key), dict):
            out[key] = {**out[key], draw(st.text(min_size=1, max_size=8)): draw(json_values)}
    return out


@st.composite
def hostile_replies(draw: st.DrawFn, n: int) -> Reply:
    """One answer: a (possibly hostile) envelope, broken bytes, or an error status."""
    kind = draw(
        st.sampled_from(["envelope", "envelope", "envelope", "bytes", "status", "typed_envelope"])
    )
    if kind == "bytes":
        valid = json.dumps({"cursor": f"C{n}", "has_more": True, "items": [item(n)]}).encode()
        body = draw(
            st.sampled_from(
                [
                    valid[: len(valid) // 2],
                    b"\xff\xfe\x00garbage\x80",
                    valid.replace(b"Mara", b"M\xc3\x28ra"),
                    b"<html><body>Bad gateway</body></html>",
                    b"",
                ]
            )
        )
        return Reply(200, body, draw(st.sampled_from(["application/json", "text/html"])))
    if kind == "status":
        status = draw(st.sampled_from([400, 401, 403, 404, 409, 429, 500, 502, 503, 504, 302, 204]))
        body = draw(
            st.sampled_from(
                [b"", b"not json", b'{"Error":{"Message":"x"}}', b'{"status":1,"message":null}']
            )
        )
        return Reply(status, body)
    items = draw(
        st.lists(
            hostile_items(n * 100 + draw(st.integers(0, 50))),
            max_size=3,
            unique_by=lambda i: json.dumps(i, sort_keys=True),
        )
    )
    if kind == "typed_envelope":
        envelope: dict[str, Any] = {"cursor": f"C{n}", "has_more": True, "items": items}
        key = draw(st.sampled_from(["cursor", "has_more", "items"]))
        if draw(st.booleans()):
            envelope.pop(key)
        else:
            envelope[key] = draw(json_values)
    else:
        envelope = {"cursor": f"C{n}", "has_more": True, "items": items}
        if draw(st.booleans()):
            envelope[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return Reply(200, json.dumps(envelope).encode())


@st.composite
def scripts(draw: st.DrawFn) -> list[Reply]:
    """One to four answers served in order; then the server ends the stream."""
    count = draw(st.integers(1, 4))
    return [draw(hostile_replies(n)) for n in range(1, count + 1)]


@FUZZ
@given(replies=scripts())
def test_any_answer_keeps_the_promises(tap_forks: ForkServer, replies: list[Reply]) -> None:
    check_invariants(run_script(tap_forks, replies))
