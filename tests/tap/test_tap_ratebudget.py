"""The per-token request budget, with a clock the test controls."""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from tap_onepassword.ratebudget import RateBudget
from tests.support.runs import run_tap

if TYPE_CHECKING:
    import pytest

    from onepassword_emulator import Emulator


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of requests inside any half-open window [t, t + window)."""
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, start + window) - i for i, start in enumerate(ordered)), default=0
    )


def test_never_more_than_the_minute_and_hour_limits() -> None:
    clock = FakeClock()
    budget = RateBudget(600, 30_000, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(32_000):
        budget.acquire()
        sent.append(clock())
    assert most_in_any_window(sent, 60) == 600
    assert most_in_any_window(sent, 3600) == 30_000
    # And it does not wait longer than it must: 30,000 in the first 50 minutes, then the
    # hour window holds the rest until the first requests age out.
    assert sent[29_999] - sent[0] < 3000
    assert sent[30_000] - sent[0] >= 3600


def test_a_small_budget_spaces_requests_by_the_minute() -> None:
    clock = FakeClock()
    budget = RateBudget(5, 1000, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(12):
        budget.acquire()
        sent.append(clock() - 1000.0)
    assert sent == [0, 0, 0, 0, 0, 61, 61, 61, 61, 61, 122, 122]  # windows + 1 s margin


def test_pause_holds_every_user_of_the_token() -> None:
    clock = FakeClock()
    budget = RateBudget(600, 30_000, clock=clock, sleep=clock.sleep)
    budget.acquire()
    budget.pause(7)
    budget.acquire()
    assert clock() == 1007.0
    assert budget.waited == 7.0


def test_threads_sharing_a_budget_stay_within_it() -> None:
    clock = FakeClock()
    budget = RateBudget(50, 400, clock=clock, sleep=clock.sleep)
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(100):
            budget.acquire()
            with lock:
                sent.append(clock())

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 600
    assert most_in_any_window(sent, 60) <= 50
    assert most_in_any_window(sent, 3600) <= 400


def test_a_real_run_keeps_every_stream_and_account_of_a_token_in_one_budget(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    budgets: list[RateBudget] = []

    def budget_on_fake_time(per_minute: int, per_hour: int, **options: Any) -> RateBudget:
        budget = RateBudget(per_minute, per_hour, clock=clock, sleep=clock.sleep, **options)
        budgets.append(budget)
        return budget

    monkeypatch.setattr("tap_onepassword.api.RateBudget", budget_on_fake_time)
    sent: list[float] = []
    real_acquire = RateBudget.acquire

    def acquire_and_note(self: RateBudget) -> None:
        real_acquire(self)
        sent.append(clock())

    monkeypatch.setattr(RateBudget, "acquire", acquire_and_note)
    token = emulator.account("acme").token
    config = {
        "accounts": [{"name": "one", "token": token}, {"name": "two", "token": token}],
        "base_url": emulator.base_url,
        "page_size": 100,
        "max_requests_per_minute": 4,
    }
    result = run_tap(config)
    assert len(budgets) == 1  # one token, one budget, for 3 streams x 2 accounts
    assert len(sent) == len(emulator.requests) == 2 + 2 * 3 * 3  # introspection + pages
    assert most_in_any_window(sent, 60) == 4
    assert sent[-1] - sent[0] >= 60 * (len(sent) // 4 - 1)
    assert len(result.records["audit_events"]) == 2 * 250
