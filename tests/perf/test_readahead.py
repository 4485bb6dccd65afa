"""Read-ahead changes when pages are fetched, never what is written: records, state, requests."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import pytest

from onepassword_emulator import AccountSpec, Emulator
from tap_onepassword.errors import ApiResponseError
from tap_onepassword.output import SingerOutput
from tap_onepassword.pages import (
    HeldPage,
    MalformedEvents,
    Page,
    PreparedPage,
    decode_held_page,
    decode_page,
)
from tap_onepassword.readahead import (
    BYTES_PER_EVENT,
    CURRENT_PAGES,
    START_IN_FLIGHT,
    Pace,
    ReadAhead,
)
from tap_onepassword.run import SyncRun
from tests.support.compare import comparable, config_for, final_state, fixed_start
from tests.support.runs import run_tap

if TYPE_CHECKING:
    from collections.abc import Iterator

    from onepassword_emulator import RequestRecord

ACCOUNTS = [
    AccountSpec("acme"),
    AccountSpec("globex", msp=True),
    AccountSpec("hooli"),
    AccountSpec("initech", features=("signinattempts", "auditevents")),
]


@pytest.fixture
def slow_emulator() -> Iterator[Emulator]:
    """Four accounts, 300 events per stream, every answer 20 ms late: workers overlap."""
    with Emulator(seed=5, events=300, accounts=ACCOUNTS, latency_ms=20) as emu:
        yield emu


def sequential(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SyncRun, "READ_AHEAD_BYTES", 0)


def pages_asked(requests: list[RequestRecord]) -> dict[tuple[str | None, str], list[Any]]:
    """Request bodies per account and endpoint, in the order each partition sent them."""
    asked: dict[tuple[str | None, str], list[Any]] = {}
    for request in requests:
        if request.method == "POST":
            asked.setdefault((request.account, request.path), []).append(request.body)
    return asked


def test_read_ahead_writes_what_a_sequential_run_writes(
    slow_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A buffer of 300 KB (some 8 pages of 50 events) for 11 partitions of 6 pages: workers
    # must wait for room, nearest partitions first, while the SDK emits.
    monkeypatch.setattr(SyncRun, "READ_AHEAD_BYTES", 300_000)
    encoded = Counter[bool]()
    real_write_lines = SingerOutput.write_encoded_lines

    def write_encoded_lines(self: SingerOutput, stream: str, lines: bytes, *args: Any) -> None:
        encoded[SyncRun.READ_AHEAD_BYTES > 0] += lines.count(b"\n")
        real_write_lines(self, stream, lines, *args)

    monkeypatch.setattr(SingerOutput, "write_encoded_lines", write_encoded_lines)
    config = config_for(slow_emulator, page_size=50, start_date=fixed_start(slow_emulator))
    ahead = run_tap(config)
    ahead_requests = slow_emulator.requests
    slow_emulator.clear_requests()
    with monkeypatch.context() as patch:
        sequential(patch)
        one_by_one = run_tap(config)
    assert comparable(ahead) == comparable(one_by_one)
    # Read-ahead wrote every event as prepared by its workers; the sequential run none.
    assert encoded == {True: (3 * 3 + 2) * 300}
    assert sum(m["type"] == "RECORD" for m in ahead) == (3 * 3 + 2) * 300 + 4
    assert pages_asked(ahead_requests) == pages_asked(slow_emulator.requests)
    # It did read ahead: the partition synced first (audit events of acme) was still being
    # read when the next ones' first requests had gone out.
    order = [(r.path, r.account) for r in ahead_requests if r.method == "POST"]
    first = ("/api/v2/auditevents", "acme")
    last_of_first = max(i for i, partition in enumerate(order) if partition == first)
    others_first = min(i for i, partition in enumerate(order) if partition != first)
    assert others_first < last_of_first
    assert len(set(order[: last_of_first + 1])) > 2


@pytest.mark.usefixtures("fast_retries")
def test_an_incremental_run_with_faults_is_the_same_with_and_without_read_ahead(
    slow_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # acme and initech only: item usages (acme's alone) meet a refused cursor, and the fallback
    # to a timestamp; audit events (both) meet a 503 somewhere, retried by whoever asked.
    config = config_for(slow_emulator, page_size=50, start_date=fixed_start(slow_emulator))
    config["accounts"] = [a for a in config["accounts"] if a["name"] in {"acme", "initech"}]
    state = final_state(run_tap(config))
    slow_emulator.add_events("acme", "itemusages", 120)
    slow_emulator.add_events("initech", "signinattempts", 70, late=True)
    slow_emulator.add_events("acme", "auditevents", 60)

    def faulty_run() -> list[dict[str, Any]]:
        slow_emulator.fail_next("/api/v2/itemusages", "reject_cursor")
        slow_emulator.fail_next("/api/v2/auditevents", "503")
        return run_tap(config, state=copy.deepcopy(state))  # the tap changes what it loads

    seen_before = len(slow_emulator.requests)
    ahead = faulty_run()
    with monkeypatch.context() as patch:
        sequential(patch)
        one_by_one = faulty_run()
    assert comparable(ahead) == comparable(one_by_one)
    items = [m for m in ahead if m["type"] == "RECORD" and m["stream"] == "item_usages"]
    assert len(items) >= 120
    resets = [
        r
        for r in slow_emulator.requests[seen_before:]
        if r.path == "/api/v2/itemusages" and r.body and "start_time" in r.body
    ]
    assert len(resets) == 2  # the fallback re-read the lookback window, in both runs
    assert not slow_emulator.faults.pending()


class FakeStream:
    """Pages of `size` events each (one KiB of text apiece), counting what it produced; may
    fail at one page."""

    def __init__(self, name: str, pages: int, size: int, fail_at: int | None = None) -> None:
        self.name = name
        self.pages = pages
        self.size = size
        self.fail_at = fail_at
        self.produced: Counter[str] = Counter()
        self.held: defaultdict[str, list[bool]] = defaultdict(list)

    def request_pages_ahead(
        self, context: dict[str, str], first_body: dict[str, Any], held: Any
    ) -> Iterator[Page | HeldPage]:
        account = context["account_name"]
        for number in range(self.pages):
            if number == self.fail_at:
                msg = f"{self.name}/{account}: page {number} refused"
                raise RuntimeError(msg)
            self.produced[account] += 1
            event = {"n": number, "body": first_body["start"], "pad": ""}
            event["pad"] = "x" * (BYTES_PER_EVENT - len(json.dumps(event)) - 1)
            body = {"cursor": f"{account}-{number}", "has_more": True, "items": [event] * self.size}
            text = json.dumps(body, separators=(",", ":")).encode()
            waits = held()
            self.held[account].append(waits)
            yield decode_held_page(text) if waits else decode_page(text)


def settle(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def plan(stream: Any, accounts: list[str]) -> list[tuple[Any, Any, dict[str, Any]]]:
    return [(stream, {"account_name": a}, {"start": a}) for a in accounts]


def test_buffers_stay_within_their_bounds_and_pages_come_in_order() -> None:
    stream = FakeStream("s", pages=30, size=10)
    accounts = ["a", "b", "c", "d"]
    room = 50 * BYTES_PER_EVENT
    ahead = ReadAhead(plan(stream, accounts), page_size=10, max_bytes=room, workers=4)
    try:
        # Nobody consumes yet: the first partition fills its own few pages, the others share
        # room for 50 events (5 pages), and nothing more is fetched.
        settle(lambda: sum(stream.produced.values()) >= CURRENT_PAGES + 5)
        time.sleep(0.2)
        assert stream.produced["a"] == CURRENT_PAGES
        assert stream.produced["b"] + stream.produced["c"] + stream.produced["d"] == 5
        # Pages of the partition being emitted are parsed as they come; the others wait as text.
        assert stream.held["a"] == [False] * CURRENT_PAGES
        assert all(stream.held[account] == [True] * stream.produced[account] for account in "bcd")
        for account in accounts:
            pages = ahead.take(stream, {"account_name": account})  # type: ignore[arg-type]
            assert pages is not None
            got = [(page.cursor, page.items[0]["body"]) for page in pages]
            assert got == [(f"{account}-{n}", account) for n in range(30)]
            assert stream.held[account][-1] is False  # current by the time its end came
    finally:
        ahead.close()
    assert all(not thread.is_alive() for thread in ahead._threads)


def test_an_error_arrives_where_a_sequential_run_meets_it() -> None:
    stream = FakeStream("s", pages=5, size=3, fail_at=3)
    ahead = ReadAhead(plan(stream, ["a", "b"]), page_size=3, max_bytes=1 << 20, workers=2)
    try:
        pages = ahead.take(stream, {"account_name": "a"})  # type: ignore[arg-type]
        assert pages is not None
        assert next(pages).cursor == "a-0"
        assert next(pages).cursor == "a-1"
        assert next(pages).cursor == "a-2"
        with pytest.raises(RuntimeError, match="s/a: page 3 refused"):
            next(pages)
        # The next partition is unaffected up to its own failure.
        later = ahead.take(stream, {"account_name": "b"})  # type: ignore[arg-type]
        assert later is not None
        assert [p.cursor for p in [next(later), next(later), next(later)]] == ["b-0", "b-1", "b-2"]
        assert ahead.take(FakeStream("other", 1, 1), {"account_name": "a"}) is None  # type: ignore[arg-type]
        assert ahead.take(stream, {"account_name": "a"}) is None  # type: ignore[arg-type] # once
    finally:
        ahead.close()


def test_closing_stops_workers_that_wait_for_room() -> None:
    stream = FakeStream("s", pages=1000, size=10)
    room = 20 * BYTES_PER_EVENT
    ahead = ReadAhead(plan(stream, ["a", "b", "c"]), page_size=10, max_bytes=room, workers=3)
    settle(lambda: sum(stream.produced.values()) == CURRENT_PAGES + 2)
    ahead.close()
    for thread in ahead._threads:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in ahead._threads)
    produced = sum(stream.produced.values())
    time.sleep(0.1)
    assert sum(stream.produced.values()) == produced


class FailingPreparedStream:
    """Prepared pages of one record each; the third ends in an error (an event without uuid)."""

    name = "s"

    def __init__(self) -> None:
        self.produced: Counter[str] = Counter()

    def request_pages_ahead(
        self,
        context: dict[str, str],
        first_body: dict[str, Any],  # noqa: ARG002 - the interface's
        held: Any,  # noqa: ARG002 - prepared pages are never held as text
    ) -> Iterator[PreparedPage]:
        for number in range(10):
            self.produced[context["account_name"]] += 1
            error = ApiResponseError("an event has no uuid") if number == 2 else None
            yield PreparedPage(
                cursor=f"c{number}",
                has_more=True,
                events=2,
                timestamps=["t"],
                text=b"{}",
                ends=[2],
                newest="t",
                error=error,
                held_bytes=130,
                ids=["x"],
                malformed=MalformedEvents(),
            )


def test_a_worker_stops_at_the_page_its_partition_will_fail_on() -> None:
    # The SDK side raises that page's error after its records: a request for the next page
    # would spend the token's budget on what a sequential run never asks.
    stream = FailingPreparedStream()
    ahead = ReadAhead(plan(stream, ["a", "b"]), page_size=1, max_bytes=1 << 20, workers=2)
    try:
        settle(lambda: sum(stream.produced.values()) >= 6)
        time.sleep(0.2)
        assert stream.produced == {"a": 3, "b": 3}
        pages = ahead.take(stream, {"account_name": "a"})  # type: ignore[arg-type]
        assert pages is not None
        got = list(pages)
        assert [page.cursor for page in got] == ["c0", "c1", "c2"]
        assert isinstance(got[-1], PreparedPage)
        assert got[-1].error is not None
    finally:
        ahead.close()


def test_the_pace_keeps_few_pages_in_flight_when_answers_come_fast_and_many_when_slow() -> None:
    fast = Pace(16)
    for _ in range(20):
        fast.measured(round_trip=0.004, cpu=0.020)  # a local emulator, 1,000-event pages
    assert fast.wanted == 1
    slow = Pace(16)
    for _ in range(20):
        slow.measured(round_trip=0.100, cpu=0.003)  # 100 ms away, 100-event pages
    assert slow.wanted == 16
    middle = Pace(16)
    for _ in range(20):
        middle.measured(round_trip=0.030, cpu=0.010)
    assert middle.wanted == 4


def test_answers_slowed_by_a_busy_process_do_not_add_pages_in_flight() -> None:
    # Answers take 9 ms when one page is out; with more out, each waits for the others'
    # decoding (and for the server) and takes longer. Counting those longer waits would ask
    # for more pages still, and so on: the shortest recent round trip counts.
    pace = Pace(16)
    for n in range(40):
        pace.measured(round_trip=0.009 if n % 8 == 0 else 0.009 * pace.wanted, cpu=0.010)
    assert pace.wanted == 1
    # When every answer really is slower (a farther network), the pace follows within a window.
    for _ in range(Pace.ROUND_TRIPS):
        pace.measured(round_trip=0.080, cpu=0.010)
    assert pace.wanted == 9


def test_read_ahead_starts_threads_only_as_the_pace_asks() -> None:
    stream = FakeStream("s", pages=40, size=2)
    ahead = ReadAhead(
        plan(stream, [f"a{n}" for n in range(12)]),
        page_size=2,
        max_bytes=1 << 20,
        workers=16,
        round_trip=lambda: 0.0,  # answers at once: one page in flight at a time is enough
    )
    try:
        settle(lambda: sum(stream.produced.values()) >= 40)
        assert sum(stream.produced.values()) >= 40
        assert len(ahead._threads) <= START_IN_FLIGHT
    finally:
        ahead.close()
    slow = FakeStream("s", pages=40, size=2)
    ahead = ReadAhead(
        plan(slow, [f"a{n}" for n in range(12)]),
        page_size=2,
        max_bytes=1 << 20,
        workers=16,
        round_trip=lambda: 1.0,
    )
    try:
        settle(lambda: len(ahead._threads) >= 12)
        assert len(ahead._threads) == 12  # one per partition, as many as asked
    finally:
        ahead.close()
