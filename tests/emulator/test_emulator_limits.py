"""Rate limits per token, Retry-After, and the two error body styles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from onepassword_emulator import Emulator
from onepassword_emulator.clock import Clock
from onepassword_emulator.ratelimit import RateLimiter

if TYPE_CHECKING:
    import requests


def _introspect(emu: Emulator, http: requests.Session, token: str) -> requests.Response:
    return http.get(
        f"{emu.base_url}/api/v2/auth/introspect",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def test_600_requests_a_minute_per_token_then_429(emu: Emulator, http: requests.Session) -> None:
    token = emu.account("acme").token
    statuses = [_introspect(emu, http, token).status_code for _ in range(600)]
    assert statuses == [200] * 600
    limited = http.post(
        f"{emu.base_url}/api/v2/signinattempts",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert limited.status_code == 429
    assert limited.json() == {"Error": {"Message": "Too Many Requests"}}
    assert "Retry-After" not in limited.headers
    # Another token (even of the same account) has its own budget.
    assert _introspect(emu, http, emu.mint_token("acme")).status_code == 200
    assert _introspect(emu, http, emu.account("globex").token).status_code == 200
    # Rejected requests do not count; a minute later the window has slid past the burst.
    emu.advance_time(30)  # the burst took far less than 30 s of real time
    assert _introspect(emu, http, token).status_code == 429
    emu.advance_time(31)
    assert _introspect(emu, http, token).status_code == 200
    assert [r.status for r in emu.requests].count(429) == 2


def test_30000_requests_an_hour_even_when_each_minute_is_within_budget() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    allowed = 0
    for _minute in range(51):
        allowed += sum(limiter.allow("token") for _ in range(600))
        clock.advance(60)
    assert allowed == 30_000
    assert limiter.allow("token") is False
    assert limiter.allow("other token") is True
    clock.advance(3600 - 51 * 60 + 60)  # the oldest minute of requests leaves the hour window
    assert limiter.allow("token") is True


def test_the_hour_limit_answers_429_over_http(http: requests.Session) -> None:
    with Emulator(seed=2, events=10, rate_limit_per_hour=5) as emu:
        token = emu.account("acme").token
        assert [_introspect(emu, http, token).status_code for _ in range(6)] == [200] * 5 + [429]
        emu.advance_time(3601)
        assert _introspect(emu, http, token).status_code == 200


def test_retry_after_is_sent_only_when_configured(http: requests.Session) -> None:
    with Emulator(seed=2, events=10, rate_limit_per_minute=1, retry_after=30) as emu:
        token = emu.account("acme").token
        assert _introspect(emu, http, token).status_code == 200
        limited = _introspect(emu, http, token)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "30"


def test_the_status_error_style(http: requests.Session) -> None:
    with Emulator(seed=2, events=10, error_style="status", rate_limit_per_minute=1) as emu:
        url = f"{emu.base_url}/api/v2/signinattempts"
        unauthorized = http.post(url, json={}, timeout=5)
        assert unauthorized.json() == {"status": 401, "message": "Unauthorized"}
        headers = {"Authorization": f"Bearer {emu.account('acme').token}"}
        bad = http.post(url, json={"limit": 0}, headers=headers, timeout=5)
        assert bad.status_code == 400
        assert bad.json()["status"] == 400
        assert "limit" in bad.json()["message"]
        limited = http.post(url, json={}, headers=headers, timeout=5)
        assert limited.json() == {"status": 429, "message": "Too Many Requests"}
        emu.fail_next("*", "503")
        assert http.post(url, json={}, headers=headers, timeout=5).json() == {
            "status": 503,
            "message": "Service Unavailable",
        }
        # 404 stays plain text whatever the style.
        assert http.get(f"{emu.base_url}/nope", timeout=5).text == "404 page not found\n"


def test_an_unknown_error_style_is_refused() -> None:
    with pytest.raises(ValueError, match="error_style"):
        Emulator(error_style="xml")
