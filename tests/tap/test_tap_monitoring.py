"""What an operator watching a run sees: waits announced, metrics per account, one summary.

METRIC lines are read as a log shipper reads them: the JSON after `METRIC: ` on the SDK's
metrics logger, summed by stream and `account_name`.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest

from onepassword_emulator import AccountSpec, Emulator
from tap_onepassword.accountmetrics import AccountMeters
from tap_onepassword.api import EventsApiClient
from tap_onepassword.errors import ApiResponseError
from tap_onepassword.outcome import AccountsFailedError
from tap_onepassword.ratebudget import NOTICE_EVERY, RateBudget
from tap_onepassword.runsummary import Outcome, RunSummary
from tap_onepassword.slowanswers import SlowAnswers
from tests.support.runs import EVENT_STREAMS, FEATURE_OF, run_tap, selecting, tap_config

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.runs import SyncResult

NOW = datetime(2025, 2, 1, tzinfo=timezone.utc)


class FakeClock:
    """Time that moves only when someone sleeps; every sleep is remembered."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


class TimedLines(logging.Handler):
    """Every log line at INFO or above, with the fake clock's time when it was logged."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(logging.INFO)
        self.clock = clock
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((self.clock(), record.getMessage()))


@pytest.fixture
def timed_lines() -> Iterator[TimedLines]:
    """The lines of every logger, on a fake clock that the rate budgets share."""
    handler = TimedLines(FakeClock())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def metric_points(caplog: pytest.LogCaptureFixture, metric: str) -> list[dict[str, Any]]:
    """Parsed METRIC lines of one metric, as a log shipper would read them."""
    points = []
    for record in caplog.records:
        text = record.getMessage()
        if record.name == "singer_sdk.metrics" and text.startswith("METRIC: "):
            point = json.loads(text.removeprefix("METRIC: "))
            if point["metric"] == metric:
                points.append(point)
    return points


def by_stream_and_account(points: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """Sum of the values of each stream and account."""
    sums: Counter[tuple[str, str]] = Counter()
    for point in points:
        sums[(point["tags"]["stream"], point["tags"]["context"]["account_name"])] += point["value"]
    return sums


def emitted(result: SyncResult) -> Counter[tuple[str, str]]:
    """Records written per stream and account."""
    return Counter(
        (stream, record["account_name"])
        for stream, records in result.records.items()
        for record in records
    )


# ---- waits ---------------------------------------------------------------------------------


def test_a_long_budget_wait_is_told_every_ten_seconds_of_it() -> None:
    clock = FakeClock()
    told: list[tuple[float, str, float]] = []
    budget = RateBudget(
        5,
        1000,
        clock=clock,
        sleep=clock.sleep,
        on_long_wait=lambda reason, left: told.append((clock(), reason, left)),
    )
    for _ in range(11):
        budget.acquire()
    assert clock() == 1000.0 + 2 * 61  # two minute windows waited for, as without notices
    assert max(clock.sleeps) <= NOTICE_EVERY
    # Each 61 s wait is told seven times, 8.7 s apart: never ten seconds without a word.
    starts = [round(t - 1000.0, 1) for t, _, _ in told]
    assert starts == [round(n * 61 / 7, 1) for n in range(7)] + [
        round(61 + n * 61 / 7, 1) for n in range(7)
    ]
    assert told[0][1:] == ("the per-minute budget of 5 requests is used up", 61.0)


def test_threads_waiting_on_one_budget_share_one_notice() -> None:
    clock = FakeClock()
    told: list[float] = []
    budget = RateBudget(
        4, 1000, clock=clock, sleep=clock.sleep, on_long_wait=lambda *_: told.append(clock())
    )
    for _ in range(4):
        budget.acquire()
    threads = [threading.Thread(target=budget.acquire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Eight threads wait for the next window together: about one notice per ten seconds,
    # not eight.
    assert len(told) <= 2 * (61 // NOTICE_EVERY + 1)


def test_a_run_held_back_by_a_small_budget_is_never_silent_for_more_than_ten_seconds(
    monkeypatch: pytest.MonkeyPatch, timed_lines: TimedLines
) -> None:
    clock = timed_lines.clock

    def budget_on_fake_time(per_minute: int, per_hour: int, **options: Any) -> RateBudget:
        return RateBudget(per_minute, per_hour, clock=clock, sleep=clock.sleep, **options)

    monkeypatch.setattr("tap_onepassword.api.RateBudget", budget_on_fake_time)
    accounts = [AccountSpec("acme", features=("signinattempts", "auditevents"))]
    with Emulator(seed=3, events=40, accounts=accounts) as emu:
        result = run_tap(tap_config(emu, page_size=5, max_requests_per_minute=4))
    assert len(result.records["sign_in_attempts"]) == 40
    waited = clock() - 1000.0
    assert waited > 4 * 60, "the budget never held the run back"
    times = [t for t, _ in timed_lines.lines]
    silences = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(silences) <= NOTICE_EVERY
    waits = [text for _, text in timed_lines.lines if text.startswith("waiting for the request")]
    assert len(waits) >= waited / (NOTICE_EVERY + 1)
    assert waits[0].startswith(
        "waiting for the request budget of the token of account 'acme' (the per-minute budget "
        "of 4 requests is used up): "
    )
    assert waits[0].endswith(" UTC")


# ---- metrics -------------------------------------------------------------------------------


@pytest.fixture
def three_accounts() -> Iterator[Emulator]:
    """acme and globex read everything, initech lacks item usages; uneven event counts."""
    with Emulator(seed=11, events=1500) as emu:
        yield emu


def test_record_count_adds_up_per_account_and_names_no_account_that_emitted_none(
    three_accounts: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="singer_sdk.metrics")
    result = run_tap(tap_config(three_accounts, page_size=400))
    counts = by_stream_and_account(metric_points(caplog, "record_count"))
    written = emitted(result)
    assert written[("item_usages", "initech")] == 0
    assert counts == written
    assert ("item_usages", "initech") not in counts
    for point in metric_points(caplog, "record_count"):
        assert point["type"] == "counter"
        assert set(point["tags"]) == {"stream", "pid", "context"}


def test_record_count_during_a_long_partition_still_adds_up(
    three_accounts: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the interval passed after every page, each account logs several counts."""
    monkeypatch.setattr(AccountMeters, "RECORD_COUNT_EVERY", 0.0)
    caplog.set_level(logging.INFO, logger="singer_sdk.metrics")
    result = run_tap(tap_config(three_accounts, page_size=400))
    points = metric_points(caplog, "record_count")
    assert len(points) > len(emitted(result))  # more than one line per stream and account
    assert by_stream_and_account(points) == emitted(result)


def test_request_metrics_and_lag_are_per_stream_and_account(
    three_accounts: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="singer_sdk.metrics")
    result = run_tap(tap_config(three_accounts, page_size=400))
    feature_stream = {feature: stream for stream, feature in FEATURE_OF.items()}
    feature_stream["introspect"] = "introspection"
    seen = Counter(
        (feature_stream[r.path.rsplit("/", 1)[-1]], r.account) for r in three_accounts.requests
    )
    counted = by_stream_and_account(metric_points(caplog, "http_request_count"))
    durations = Counter(
        (p["tags"]["stream"], p["tags"]["context"]["account_name"])
        for p in metric_points(caplog, "http_request_duration")
    )
    for (stream, account), records in emitted(result).items():
        if stream == "introspection":
            continue
        assert counted[(stream, account)] == durations[(stream, account)] == 4  # 1500 / 400
        assert records == 1500
    assert counted == seen  # what the emulator answered, per stream and account
    assert counted[("introspection", "initech")] == 1
    assert ("item_usages", "initech") not in counted
    lags = {
        (p["tags"]["stream"], p["tags"]["context"]["account_name"]): p["value"]
        for p in metric_points(caplog, "event_lag_seconds")
    }
    read = {key for key in emitted(result) if key[0] != "introspection"}
    assert set(lags) == read
    assert all(point["type"] == "gauge" for point in metric_points(caplog, "event_lag_seconds"))
    assert all(0 <= lag < 120 * 86400 for lag in lags.values())


def test_sync_duration_is_logged_under_each_account(
    three_accounts: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="singer_sdk.metrics")
    run_tap(tap_config(three_accounts))
    timed = Counter(
        (p["tags"]["stream"], p["tags"]["context"]["account_name"])
        for p in metric_points(caplog, "sync_duration")
    )
    streams = (*EVENT_STREAMS, "introspection")
    assert timed == {(s, a): 1 for s in streams for a in ("acme", "globex", "initech")}


# ---- the run summary -----------------------------------------------------------------------


def human_lines(records: list[logging.LogRecord]) -> list[str]:
    """INFO and above, METRIC lines left out (those are for machines)."""
    return [
        r.getMessage()
        for r in records
        if r.levelno >= logging.INFO and r.name != "singer_sdk.metrics"
    ]


def test_the_summary_of_a_thousand_accounts_is_a_few_short_lines() -> None:
    summary = RunSummary(logging.getLogger("summary-test"), now=lambda: NOW)
    for n in range(1000):
        account = f"client-{n:04d}"
        for stream in EVENT_STREAMS:
            if stream == "item_usages" and n % 10 == 0:
                summary.add(Outcome(stream, account, "skipped"))
            elif stream == "audit_events" and n % 25 == 0:
                summary.add(Outcome(stream, account, "failed", reason="gave up " + "x" * 500))
            else:
                newest = f"2025-01-{1 + n % 28:02d}T00:00:00.000000+00:00"
                summary.add(Outcome(stream, account, "read", records=n, requests=2, newest=newest))
    lines = summary.lines()
    assert len(lines) <= 10
    assert max(len(line) for line in lines) <= 1000
    assert lines[0].startswith("run summary: ")
    assert "from 1000 accounts" in lines[0]
    assert "40 stream-accounts failed, 100 skipped" in lines[0]
    read_records = sum(range(1000)) - sum(range(0, 1000, 25))
    assert (
        f"  audit_events: {read_records} records, 1920 requests; 960 accounts read, 0 skipped, "
        "40 failed"
    ) in lines
    assert any(
        line.startswith("  failed (40): 'client-0000' audit_events: gave up") for line in lines
    )
    assert any(line.endswith(" and 35 more") for line in lines)
    assert any("'client-0000' item_usages" in line and "and 95 more" in line for line in lines)
    behind = next(line for line in lines if "furthest behind" in line)
    assert "'client-0000' sign_in_attempts" in behind  # 1 January: the oldest newest event
    figures = json.dumps(summary.figures())
    assert len(figures) < 4000
    assert json.loads(figures)["streams"]["item_usages"]["skipped"] == 100


def test_the_summary_names_one_partition_per_account_before_a_second_of_any() -> None:
    summary = RunSummary(logging.getLogger("summary-test"), now=lambda: NOW)
    # Sync order: 'first' fails in every stream, the others only in later ones.
    order = [
        ("audit_events", "first"),
        ("item_usages", "first"),
        ("item_usages", "second"),
        ("sign_in_attempts", "first"),
        ("sign_in_attempts", "second"),
        ("sign_in_attempts", "third"),
        ("v3", "first"),
        ("v3", "fourth"),
        ("zz", "first"),
        ("zz", "fifth"),
        ("zz", "sixth"),
    ]
    for stream, account in order:
        summary.add(Outcome(stream, account, "failed", reason=f"{account} gave up"))
        summary.add(Outcome(stream, account, "skipped"))
        summary.add(Outcome(stream, "fine", "read", records=1))
    figures = summary.figures()
    for kind in ("failed", "skipped"):
        named = [(f["stream"], f["account"]) for f in figures[f"{kind}_first"]]
        assert named == [
            ("audit_events", "first"),
            ("item_usages", "second"),
            ("sign_in_attempts", "third"),
            ("v3", "fourth"),
            ("zz", "fifth"),
        ], kind
        assert figures[kind] == len(order)
    assert figures["accounts"] == 7
    assert figures["streams"]["zz"] == {
        "records": 3,
        "requests": 0,
        "read": 3,
        "skipped": 3,
        "failed": 3,
    }
    lines = summary.lines()
    failed_line = next(line for line in lines if line.startswith("  failed (11): "))
    assert failed_line.endswith("'fifth' zz: fifth gave up and 6 more")
    # Fewer accounts than names: the first account's further partitions fill the list, in
    # the order they came.
    summary = RunSummary(logging.getLogger("summary-test"), now=lambda: NOW)
    for stream, account in order[:6]:
        summary.add(Outcome(stream, account, "failed"))
    assert [(f["stream"], f["account"]) for f in summary.figures()["failed_first"]] == [
        ("audit_events", "first"),
        ("item_usages", "second"),
        ("sign_in_attempts", "third"),
        ("item_usages", "first"),
        ("sign_in_attempts", "second"),
    ]


def test_a_run_of_many_accounts_logs_as_few_lines_as_a_run_of_a_few(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def run_with(accounts: int) -> list[str]:
        specs = [
            AccountSpec(f"client-{n:04d}", features=("signinattempts", "auditevents"))
            for n in range(accounts)
        ]
        caplog.clear()
        with Emulator(seed=5, events=3, accounts=specs) as emu:
            result = run_tap(tap_config(emu))
        assert len(result.records["sign_in_attempts"]) == 3 * accounts
        return human_lines(caplog.records)

    caplog.set_level(logging.INFO)
    few, many = run_with(4), run_with(120)
    assert len(many) == len(few) <= 20, "\n".join(many)
    assert any(line.startswith("run summary: 840 records from 120 accounts") for line in many)
    skipped = [line for line in many if "lack the 'itemusages' feature" in line]
    assert len(skipped) == 1
    assert "'client-0000', 'client-0001', 'client-0002' and 117 more" in skipped[0]


@pytest.mark.usefixtures("fast_retries")
def test_a_failed_account_is_named_in_the_summary(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.fail_next("/api/v2/auditevents", "503", count=20)
    caplog.set_level(logging.INFO)
    # A single token: the failure stops the run (with `accounts` the others would go on).
    single = {"token": emulator.account("acme").token, "base_url": emulator.base_url}
    with pytest.raises(ApiResponseError):
        run_tap(single)
    lines = human_lines(caplog.records)
    assert any(
        line.startswith(
            "  failed (1): 'default' audit_events: audit_events, account 'default': gave up"
        )
        for line in lines
    )
    assert any(
        line.startswith(
            "run summary (stopped early: audit_events, account 'default': gave up after"
        )
        for line in lines
    )
    figures = json.loads(next(line for line in lines if line.startswith("RUN SUMMARY: "))[13:])
    assert figures["stopped"].startswith("audit_events, account 'default': gave up after 10")
    assert figures["failed"] == 1
    assert figures["failed_first"][0]["account"] == "default"


def run_summary_figures(records: list[logging.LogRecord]) -> dict[str, Any]:
    """The figures of the run's `RUN SUMMARY: {...}` line."""
    line = next(r.getMessage() for r in records if r.getMessage().startswith("RUN SUMMARY: "))
    figures: dict[str, Any] = json.loads(line.removeprefix("RUN SUMMARY: "))
    return figures


def unreachable_base_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


EVERY_STREAM = (*EVENT_STREAMS, "audit_events_v3", "introspection")


@pytest.mark.parametrize("refusal", ["revoked", "unreachable"])
def test_an_account_refused_at_introspection_counts_failed_in_each_stream_of_the_summary(
    refusal: str,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(EventsApiClient, "RETRY_BASE_SECONDS", 0.001)
    monkeypatch.setattr(EventsApiClient, "MAX_TRIES", 3)
    config = tap_config(emulator)
    if refusal == "revoked":
        emulator.revoke_token(emulator.account("globex").token)
        why, tries = "the Events API refused the token (401) at ", 1
    else:
        config["accounts"][1]["base_url"] = unreachable_base_url()
        why, tries = "gave up after 3 attempts; last error: connection failed", 3
    caplog.set_level(logging.INFO)
    with pytest.raises(AccountsFailedError, match=r"^1 of 3 accounts failed \('globex': "):
        run_tap(config, catalog=selecting(config, *EVERY_STREAM))
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
    figures = run_summary_figures(caplog.records)
    assert figures["accounts"] == 3
    assert figures["failed"] == len(EVERY_STREAM)
    for stream in EVERY_STREAM:
        totals = figures["streams"][stream]
        assert totals["failed"] == 1, stream
        assert totals["read"] + totals["skipped"] + totals["failed"] == 3, stream
    assert sorted(f["stream"] for f in figures["failed_first"]) == sorted(EVERY_STREAM)
    for failed in figures["failed_first"]:
        assert failed["account"] == "globex"
        assert failed["reason"].startswith(f"introspection failed: {why}")
    # The refused introspection requests count in its stream's figures and metric.
    sent = by_stream_and_account(metric_points(caplog, "http_request_count"))
    assert sent[("introspection", "globex")] == tries
    assert figures["streams"]["introspection"]["requests"] == 2 + tries
    # Told in the summary's lines, not in a line of its own per stream.
    lines = human_lines(caplog.records)
    assert any(line.startswith("  failed (5): 'globex' ") for line in lines)
    told = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and "'globex'" in r.getMessage()
    ]
    summary = ("  failed (5): ", "RUN SUMMARY: ", "run progress: ")
    assert all(line.startswith(summary) for line in told), told


@pytest.mark.usefixtures("fast_retries")
def test_the_streams_of_an_account_after_its_failure_count_failed_too(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # Streams go by name: audit_events and introspection are read before item_usages fails
    # for good; sign_in_attempts comes after.
    emulator.fail_next("/api/v2/itemusages", "503", count=10)
    caplog.set_level(logging.INFO)
    with pytest.raises(AccountsFailedError, match=r"^1 of 2 accounts failed \('acme': "):
        run_tap(tap_config(emulator, ["acme", "initech"]))
    figures = run_summary_figures(caplog.records)
    assert [(f["stream"], f["account"]) for f in figures["failed_first"]] == [
        ("item_usages", "acme"),
        ("sign_in_attempts", "acme"),
    ]
    gave_up, not_read = (f["reason"] for f in figures["failed_first"])
    assert gave_up.startswith("item_usages, account 'acme': gave up after 10 attempts")
    assert not_read.startswith(
        "not read, the account failed earlier in this run: item_usages, account 'acme': gave up"
    )
    for stream, totals in figures["streams"].items():
        assert totals["read"] + totals["skipped"] + totals["failed"] == 2, stream
    assert figures["streams"]["audit_events"]["read"] == 2


def test_every_failed_account_is_named_even_when_one_fails_in_every_stream_first(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # acme is refused at introspection: its five streams fail, first in sync order. globex
    # fails only in sign_in_attempts, the last stream: the sixth failed partition.
    monkeypatch.setattr(EventsApiClient, "RETRY_BASE_SECONDS", 0.001)
    monkeypatch.setattr(EventsApiClient, "MAX_TRIES", 3)
    emulator.revoke_token(emulator.account("acme").token)
    emulator.fail_next("/api/v2/signinattempts", "503", count=3)
    config = tap_config(emulator, ["acme", "globex"])
    caplog.set_level(logging.INFO)
    with pytest.raises(AccountsFailedError, match=r"^2 of 2 accounts failed \('acme': "):
        run_tap(config, catalog=selecting(config, *EVERY_STREAM))
    figures = run_summary_figures(caplog.records)
    assert figures["failed"] == len(EVERY_STREAM) + 1
    named = [(f["stream"], f["account"]) for f in figures["failed_first"]]
    assert named == [
        ("audit_events", "acme"),
        ("sign_in_attempts", "globex"),
        ("audit_events_v3", "acme"),
        ("introspection", "acme"),
        ("item_usages", "acme"),
    ]
    assert figures["failed_first"][1]["reason"].startswith(
        "sign_in_attempts, account 'globex': gave up after 3 attempts"
    )
    assert figures["streams"]["sign_in_attempts"]["failed"] == 2
    assert figures["streams"]["audit_events"] == {
        "records": 250,
        "requests": 1,
        "read": 1,
        "skipped": 0,
        "failed": 1,
    }
    lines = human_lines(caplog.records)
    failed_line = next(line for line in lines if line.startswith("  failed (6): "))
    assert "'globex' sign_in_attempts: " in failed_line
    assert failed_line.endswith(" and 1 more")


# ---- a request that waits long for its answer ----------------------------------------------


def test_a_request_out_long_is_told_every_ten_seconds_until_it_is_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    answers = SlowAnswers(logging.getLogger("slow-test"), request_timeout=60, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="slow-test")
    with answers.out("audit_events, account 'acme': POST /api/v2/auditevents"):
        for second in range(1, 36):
            now[0] = float(second)
            answers.tell_due()
    now[0] = 50.0
    answers.tell_due()  # answered: nothing more to tell
    assert [r.getMessage() for r in caplog.records] == [
        f"audit_events, account 'acme': POST /api/v2/auditevents: still waiting for the answer "
        f"after {waited} s (request_timeout 60 s)"
        for waited in (10, 20, 30)
    ]


def test_a_run_waiting_on_a_hanging_answer_says_so(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tap_onepassword.slowanswers.NOTICE_EVERY", 1.0)
    monkeypatch.setattr("tap_onepassword.slowanswers.LOOK_EVERY", 0.2)
    emulator.fail_next("/api/v2/itemusages", "hang", seconds=3.5)
    caplog.set_level(logging.INFO)
    result = run_tap(tap_config(emulator, ["acme"]))
    assert len(result.records["item_usages"]) == 250
    told = [
        r.getMessage()
        for r in caplog.records
        if "POST /api/v2/itemusages: still waiting for the answer" in r.getMessage()
    ]
    assert len(told) >= 2, told
    assert told[0].startswith("item_usages, account 'acme': POST /api/v2/itemusages: still")
