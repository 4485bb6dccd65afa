"""Exactly once at the edges: a re-served final page, exact date bounds, a failing account among
several, a response that drips in, and tokens close to their expiry."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from onepassword_emulator import Emulator
from tap_onepassword.errors import AccountUnauthorizedError
from tap_onepassword.event_ids import TailIds
from tap_onepassword.fastpath import FastPathStream
from tap_onepassword.outcome import AccountsFailedError
from tap_onepassword.run import SyncRun
from tap_onepassword.timestamps import normalise_timestamp
from tests.support.runs import (
    EVENT_STREAMS,
    FEATURE_OF,
    duplicates,
    expected_records,
    partition,
    run_cli,
    run_tap,
    run_tap_keeping_output,
    tap_config,
)
from tests.support.tokens import make_token

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.runs import SyncResult

# --------------------------------------------------------------------------- re-served pages


def keys(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((r["account_name"], r["uuid"]) for r in records)


def all_records(result: SyncResult) -> list[dict[str, Any]]:
    return [r for stream in EVENT_STREAMS for r in result.records.get(stream, [])]


@pytest.mark.parametrize("re_serve", [True, False], ids=["re-served", "plain"])
def test_each_event_is_emitted_once_over_three_runs(
    re_serve: bool,  # noqa: FBT001 - pytest passes parameters by name
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with Emulator(seed=21, events=45, re_serve_final_page=re_serve) as emu:
        config = tap_config(emu, page_size=20)
        expected = [
            record
            for stream in EVENT_STREAMS
            for account in emu.accounts
            if FEATURE_OF[stream] in account.features
            for record in expected_records(emu, account.name, stream)
        ]

        first = run_tap(config)
        assert keys(all_records(first)) == keys(expected)

        added = [
            *emu.add_events("acme", "signinattempts", 3),
            *emu.add_events("acme", "signinattempts", 2, late=True),
        ]
        added_audit = emu.add_events("globex", "auditevents", 25)  # a final page and a half
        caplog.clear()
        second = run_tap(config, state=first.final_state)
        assert keys(second.records["sign_in_attempts"]) == keys(
            [{**e, "account_name": "acme"} for e in added]
        )
        assert keys(second.records["audit_events"]) == keys(
            [{**e, "account_name": "globex"} for e in added_audit]
        )
        assert "item_usages" not in second.records
        dropped = [m for m in caplog.messages if m.startswith("re-served events")]
        assert len(dropped) == 1
        if re_serve:
            # Every stream and account's final page came back; the tap dropped all of them.
            assert "dropped " in dropped[0]
            assert "sign_in_attempts 'acme' 5" in dropped[0]  # 45 events: 5 on the last page
        else:
            assert "none" in dropped[0]

        caplog.clear()
        third = run_tap(config, state=second.final_state)
        assert all_records(third) == []
        for stream in EVENT_STREAMS:
            for account in emu.accounts:
                if FEATURE_OF[stream] not in account.features:
                    continue
                memory = TailIds.load(
                    partition(third.final_state, stream, account.name)["cursor_page_ids"]
                )
                assert 0 < len(memory) <= 20  # one page's ids, never more


def test_re_served_events_are_dropped_on_the_sdks_own_record_path_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the lean path (here turned off; a stream map does the same) pages are parsed,
    # not prepared ahead, and the records go through the SDK.
    monkeypatch.setattr(FastPathStream, "LEAN_OUTPUT", False)
    with Emulator(seed=24, events=30, re_serve_final_page=True) as emu:
        config = tap_config(emu, ["acme"], page_size=20)
        first = run_tap(config)
        added = emu.add_events("acme", "auditevents", 2)
        second = run_tap(config, state=first.final_state)
        assert keys(all_records(second)) == keys([{**e, "account_name": "acme"} for e in added])


def test_the_tail_memory_of_a_full_page_of_1000_is_about_8000_characters() -> None:
    with Emulator(seed=22, events=1000, re_serve_final_page=True) as emu:
        config = tap_config(emu, ["acme"], page_size=1000)
        first = run_tap(config)
        memory = partition(first.final_state, "sign_in_attempts", "acme")["cursor_page_ids"]
        assert len(TailIds.load(memory)) == 1000
        assert len(memory) == 8000  # 6 bytes of hash per id, base64
        second = run_tap(config, state=first.final_state)
        assert all_records(second) == []


# --------------------------------------------------------------------------- date bounds


def shifted(normalised: str, nanos: int = 0) -> str:
    """The same instant plus `nanos`, written with a +05:30 offset and nine fraction digits."""
    whole = datetime.fromisoformat(normalised[:19] + "+00:00")
    total = int(normalised[20:29]) + nanos
    whole += timedelta(seconds=total // 1_000_000_000)
    local = whole.astimezone(timezone(timedelta(hours=5, minutes=30)))
    return f"{local:%Y-%m-%dT%H:%M:%S}.{total % 1_000_000_000:09d}+05:30"


def test_start_date_is_inclusive_and_end_date_exclusive_to_the_nanosecond(
    emulator: Emulator,
) -> None:
    events = expected_records(emulator, "acme", "sign_in_attempts")
    stamps = sorted(r["timestamp"] for r in events)
    # An event with a fraction of a second, so whole-second rounding would let its
    # neighbours in.
    low = next(t for t in stamps[50:] if t[20:29] != "000000000")
    high = next(t for t in stamps[150:] if t[20:29] != "000000000")

    def emitted(start: str, end: str) -> list[str]:
        config = tap_config(emulator, ["acme"], start_date=start, end_date=end)
        return sorted(r["timestamp"] for r in run_tap(config).records["sign_in_attempts"])

    assert emitted(shifted(low), shifted(high)) == [t for t in stamps if low <= t < high]
    # One nanosecond later, the first event is out; one later at the end, the last is in.
    assert emitted(shifted(low, 1), shifted(high, 1)) == [t for t in stamps if low < t <= high]


def test_events_before_start_date_are_dropped_on_later_runs_too(emulator: Emulator) -> None:
    newest = max(r["timestamp"] for r in expected_records(emulator, "acme", "sign_in_attempts"))
    start = shifted(newest, -30 * 60 * 1_000_000_000)
    config = tap_config(emulator, ["acme"], start_date=start)
    first = run_tap(config)
    late = emulator.add_events("acme", "signinattempts", 12, late=True)
    second = run_tap(config, state=first.final_state)
    bound = normalise_timestamp(start)
    after = sorted(e["uuid"] for e in late if normalise_timestamp(e["timestamp"]) >= bound)
    assert 0 < len(after) < len(late)  # some late events are older than start_date
    assert sorted(r["uuid"] for r in second.records["sign_in_attempts"]) == after


# --------------------------------------------------------------------------- failing accounts


def test_a_refused_account_is_named_and_the_others_are_synced(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    config = tap_config(emulator)
    emulator.revoke_token(emulator.account("globex").token)
    caplog.set_level(logging.INFO)
    with pytest.raises(AccountsFailedError, match=r"1 of 3 accounts failed \('globex': .*401"):
        run_tap(config)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "account 'globex' failed" in errors[0].getMessage()
    assert "401" in errors[0].getMessage()


def test_other_accounts_finish_with_records_and_state_and_the_failed_one_resumes(
    emulator: Emulator, fast_retries: None
) -> None:
    del fast_retries
    # acme's item usages fail for good (retries run out); initech has no item usages, so
    # only acme meets the fault.
    config = tap_config(emulator, ["acme", "initech"], page_size=50)
    emulator.fail_next("/api/v2/itemusages", "503", count=10)
    result, error = run_tap_keeping_output(config)
    assert isinstance(error, AccountsFailedError)
    assert "1 of 2 accounts failed ('acme': item_usages" in str(error)
    assert "gave up after 10 attempts" in str(error)
    # The other account: everything, and its final state.
    for stream in EVENT_STREAMS:
        for account in ("initech",):
            if FEATURE_OF[stream] not in emulator.account(account).features:
                continue
            assert keys(result.of(stream, account)) == keys(
                expected_records(emulator, account, stream)
            )
            assert partition(result.final_state, stream, account)["cursor"]
    # acme stopped at its failing stream: streams after it were skipped, nothing past what
    # was emitted is in its state.
    acme_streams = {s for s in EVENT_STREAMS if result.of(s, "acme")}
    assert "item_usages" not in acme_streams
    assert not duplicates(all_records(result))

    second = run_tap(config, state=result.final_state)
    for stream in EVENT_STREAMS:
        got = keys(result.of(stream, "acme")) + keys(second.of(stream, "acme"))
        assert sorted(got) == keys(expected_records(emulator, "acme", stream))
        assert second.of(stream, "initech") == []


def test_a_token_revoked_during_the_run_sets_only_its_account_aside(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = emulator.account("acme").token
    introspected = SyncRun.access

    def access_then_revoke(run: SyncRun, account: Any) -> Any:
        answer = introspected(run, account)
        emulator.revoke_token(token)  # accepted at introspection, refused from now on
        return answer

    monkeypatch.setattr(SyncRun, "access", access_then_revoke)
    caplog.set_level(logging.ERROR)
    result, error = run_tap_keeping_output(tap_config(emulator, ["acme", "initech"]))
    assert isinstance(error, AccountsFailedError)
    assert "1 of 2 accounts failed ('acme': " in str(error)
    failed = [m for m in caplog.messages if "failed and is skipped" in m]
    assert len(failed) == 1
    assert "account 'acme' failed" in failed[0]
    assert "401" in failed[0]
    assert not [r for r in all_records(result) if r["account_name"] == "acme"]
    for stream in ("sign_in_attempts", "audit_events"):
        assert keys(result.of(stream, "initech")) == keys(
            expected_records(emulator, "initech", stream)
        )


def test_with_a_single_token_a_refused_token_still_stops_the_run(emulator: Emulator) -> None:
    token = emulator.account("acme").token
    emulator.revoke_token(token)
    config = {"token": token, "base_url": emulator.base_url}
    with pytest.raises(AccountUnauthorizedError, match="account 'default': the Events API refused"):
        run_tap(config)
    assert [r.path for r in emulator.requests] == ["/api/v2/auth/introspect"]


# --------------------------------------------------------------------------- request_timeout


def test_request_timeout_bounds_a_dripping_answer(
    emulator: Emulator, fast_retries: None, caplog: pytest.LogCaptureFixture
) -> None:
    del fast_retries
    emulator.fail_next("/api/v2/signinattempts", "drip", seconds=4)
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    result = run_tap(tap_config(emulator, ["acme"], request_timeout=1))
    assert time.monotonic() - started < 4  # the drip was cut off, not waited out
    asked = [r for r in emulator.requests if r.path == "/api/v2/signinattempts"]
    assert asked[0].fault == "drip"
    assert asked[1].body == asked[0].body  # asked again, like any time-out
    assert any("no answer within request_timeout" in m for m in caplog.messages)
    assert keys(result.records["sign_in_attempts"]) == keys(
        expected_records(emulator, "acme", "sign_in_attempts")
    )


# --------------------------------------------------------------------------- token expiry


def test_a_token_expiring_soon_is_warned_about_once_and_in_test_mode(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    soon = int(time.time()) + 5 * 86_400
    token = emulator.mint_token("acme", exp=soon)
    later = emulator.mint_token("globex", exp=int(time.time()) + 30 * 86_400)
    config = {
        "accounts": [{"name": "acme", "token": token}, {"name": "globex", "token": later}],
        "base_url": emulator.base_url,
    }
    caplog.set_level(logging.WARNING)
    run_tap(config)
    warned = [m for m in caplog.messages if "expires on" in m]
    assert len(warned) == 1
    assert "account 'acme'" in warned[0]
    assert datetime.fromtimestamp(soon, tz=timezone.utc).strftime("%Y-%m-%d") in warned[0]
    checked = run_cli("--test", config=config, tmp_path=tmp_path)
    lines = [line for line in checked.stdout.splitlines() if "expires on" in line]
    assert len(lines) == 1
    assert "account 'acme'" in lines[0]


def test_an_expired_token_is_refused_before_any_request(emulator: Emulator, tmp_path: Path) -> None:
    expired = make_token({"exp": int(time.time()) - 60}, aud=None)
    config = {
        "accounts": [
            {"name": "acme", "token": emulator.account("acme").token},
            {"name": "old", "token": expired},
        ],
        "base_url": emulator.base_url,
    }
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("tap-onepassword: error:")]
    assert "account 'old': the token expired on" in line
    assert emulator.requests == []
