"""Tokens: the host comes from `aud`, plain HTTP only to this machine."""

from __future__ import annotations

import pytest

from tap_onepassword.errors import ConfigError
from tap_onepassword.tokens import (
    EVENTS_HOSTS,
    check_base_url,
    events_base_url,
    is_loopback_host,
    read_claims,
)
from tests.support.tokens import make_token


@pytest.mark.parametrize("host", sorted(EVENTS_HOSTS))
def test_each_events_host_becomes_the_base_url(host: str) -> None:
    claims = read_claims(make_token(aud=[host, "other"]), "a")
    assert events_base_url(claims, "a") == f"https://{host}"


def test_claims_are_read_without_verifying() -> None:
    token = make_token({"1password.com/fts": ["auditevents", "itemusages"], "exp": 4_102_444_800})
    claims = read_claims(token, "a")
    assert claims.features == ("auditevents", "itemusages")
    assert claims.expires_at == 4_102_444_800
    assert claims.audience == ("events.1password.eu",)


def test_a_string_aud_is_accepted() -> None:
    claims = read_claims(make_token({"aud": "events.1password.ca"}), "a")
    assert events_base_url(claims, "a") == "https://events.1password.ca"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "::1", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["10.0.0.1", "events.1password.com", "127.0.0.1.nip.io", "0.0.0.0"]
)
def test_not_loopback_hosts(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://events.1password.com/", "https://events.1password.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://localhost:1", "http://localhost:1"),
    ],
)
def test_usable_base_urls(url: str, ok: str) -> None:
    assert check_base_url(url, "base_url") == ok


@pytest.mark.parametrize(
    "url", ["http://events.1password.com", "ftp://x", "events.1password.com", ""]
)
def test_unusable_base_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        check_base_url(url, "base_url")
