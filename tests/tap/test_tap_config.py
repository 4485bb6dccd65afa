"""Bad configuration ends in one clear line, before any request, without echoing a token."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from tap_onepassword.errors import ConfigError
from tap_onepassword.settings import DEFAULT_ACCOUNT_NAME
from tap_onepassword.tap import TapOnePassword
from tests.support.runs import run_cli, tap_config
from tests.support.tokens import make_token

if TYPE_CHECKING:
    from pathlib import Path

    from onepassword_emulator import Emulator

TOKEN = make_token()
OTHER = make_token({"jti": "other"})

BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("no token", {}, "no token configured"),
    ("empty token", {"token": "   "}, "token is empty"),
    ("not a JWT", {"token": "op_live_1234567890"}, "not a 1Password Events API token"),
    ("garbled JWT", {"token": "abc.def.ghi"}, "not a 1Password Events API token"),
    (
        "both token and accounts",
        {"token": TOKEN, "accounts": [{"name": "a", "token": OTHER}]},
        "either token (one account) or accounts",
    ),
    (
        "http to a remote host",
        {"token": TOKEN, "base_url": "http://events.example.com"},
        "plain http:// is only allowed to this machine",
    ),
    ("base_url not a URL", {"token": TOKEN, "base_url": TOKEN}, "base_url is not an https:// URL"),
    ("page_size 0", {"token": TOKEN, "page_size": 0}, "page_size must be at least 1"),
    ("page_size 1001", {"token": TOKEN, "page_size": 1001}, "page_size must be at most 1000"),
    ("page_size text", {"token": TOKEN, "page_size": "ten"}, "page_size must be of type"),
    ("api_version v3", {"token": TOKEN, "api_version": "v3"}, "api_version must be one of"),
    ("start_date prose", {"token": TOKEN, "start_date": "last tuesday"}, "start_date is not a"),
    ("end_date garbage", {"token": TOKEN, "end_date": "2025-13-45"}, "end_date is not a"),
    (
        "end before start",
        {"token": TOKEN, "start_date": "2025-02-01T00:00:00Z", "end_date": "2025-01-01T00:00:00Z"},
        "end_date must be later than start_date",
    ),
    ("timeout 0", {"token": TOKEN, "request_timeout": 0}, "request_timeout must be greater than 0"),
    (
        "duplicate names",
        {"accounts": [{"name": "a", "token": TOKEN}, {"name": "a", "token": OTHER}]},
        "the name 'a' is used twice",
    ),
    ("account without token", {"accounts": [{"name": "a"}]}, "accounts[0] needs 'token'"),
    ("account without name", {"accounts": [{"token": TOKEN}]}, "accounts[0] needs 'name'"),
    ("accounts as text", {"accounts": f'[{{"name": "a", "token": "{TOKEN}"}}]'}, "accounts must"),
    ("token not text", {"token": 12345}, "token must be of type"),
    ("legacy aud", {"token": make_token(aud="com.1password.streamingservice")}, "set base_url"),
    ("no aud", {"token": make_token(aud=None)}, "names no host"),
    ("expired", {"token": make_token({"exp": int(time.time()) - 60})}, "the token expired on"),
    ("ca_bundle missing", {"token": TOKEN, "ca_bundle": "/nonexistent/ca.pem"}, "cannot read"),
]


@pytest.mark.parametrize(
    ("config", "message"), [case[1:] for case in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_is_one_clear_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TapOnePassword(config=config)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert TOKEN not in text
    assert OTHER not in text


def test_good_config_derives_the_host_from_the_token() -> None:
    tap = TapOnePassword(config={"token": TOKEN})
    (account,) = tap.settings.accounts
    assert account.name == DEFAULT_ACCOUNT_NAME
    assert account.base_url == "https://events.1password.eu"
    assert TOKEN not in repr(account)
    assert tap.settings.page_size == 1000
    assert tap.settings.api_version == "v2"


def test_accounts_fall_back_to_the_top_level_base_url() -> None:
    tap = TapOnePassword(
        config={
            "accounts": [
                {"name": "a", "token": TOKEN},
                {"name": "b", "token": OTHER, "base_url": "https://events.1password.ca/"},
            ],
            "base_url": "http://127.0.0.1:9",
        }
    )
    urls = {a.name: a.base_url for a in tap.settings.accounts}
    assert urls == {"a": "http://127.0.0.1:9", "b": "https://events.1password.ca"}


@pytest.mark.parametrize(
    ("value", "meant"),
    [
        ("2025-01-31T10:00:00-03:00", "2025-01-31T13:00:00+00:00"),
        ("2025-01-31", "2025-01-31T00:00:00+00:00"),
        ("2025-01-31T10:00:00", "2025-01-31T10:00:00+00:00"),
    ],
)
def test_dates_are_read_as_utc_instants(value: str, meant: str) -> None:
    tap = TapOnePassword(config={"token": TOKEN, "start_date": value})
    assert tap.settings.start_date is not None
    assert tap.settings.start_date.isoformat() == meant


def test_ca_bundle_is_what_tls_verifies_against(tmp_path: Path) -> None:
    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    tap = TapOnePassword(config={"token": TOKEN, "ca_bundle": str(bundle)})
    client = tap.run.client
    (account,) = tap.settings.accounts
    assert client.session_for(account).verify == str(bundle)
    plain = TapOnePassword(config={"token": TOKEN}).run.client
    assert plain.session_for(account).verify is True


def test_accounts_sharing_a_token_share_one_budget() -> None:
    tap = TapOnePassword(
        config={
            "accounts": [
                {"name": "a", "token": TOKEN},
                {"name": "b", "token": TOKEN},
                {"name": "c", "token": OTHER},
            ]
        }
    )
    a, b, c = tap.settings.accounts
    assert tap.run.client.budget_for(a) is tap.run.client.budget_for(b)
    assert tap.run.client.budget_for(a) is not tap.run.client.budget_for(c)


def test_discovery_needs_no_valid_config() -> None:
    tap = TapOnePassword(config={}, validate_config=False)
    assert sorted(tap.streams) == [
        "audit_events",
        "audit_events_v3",
        "introspection",
        "item_usages",
        "sign_in_attempts",
    ]


def test_config_is_checked_before_any_request(emulator: Emulator, tmp_path: Path) -> None:
    config = tap_config(emulator, page_size=5000)
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "no token configured"),
        ({"token": TOKEN, "base_url": "http://10.0.0.8"}, "plain http://"),
        ({"token": TOKEN, "page_size": -1}, "page_size must be at least 1"),
    ],
    ids=["no token", "http remote", "page size"],
)
def test_cli_prints_one_line_and_exits_1(
    config: dict[str, Any], message: str, tmp_path: Path
) -> None:
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("tap-onepassword: error:")
    assert message in errors[0]
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_cli_test_mode_reports_config_errors_in_one_line(tmp_path: Path) -> None:
    result = run_cli("--test", config={"token": "nope"}, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "not a 1Password Events API token" in result.stderr


def test_cli_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "missing.json"), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "missing.json" in result.stderr
