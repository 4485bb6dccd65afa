"""Hostile config: every bad setting ends in one clear line, a non-zero exit and no request.

"No request" is proved, not assumed: every run gets ``HTTP(S)_PROXY`` pointing at a counting
loopback server, so a request to any remote host (a CONNECT or an absolute-URL request) would
land there too, and loopback ``base_url`` values point straight at it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from tests.reliability.harness import (
    ForkServer,
    assert_clean_failure,
    assert_no_traceback,
    run_tap,
    secret_fragments,
)
from tests.reliability.scripted_api import ScriptedEventsAPI
from tests.support.tokens import mint_token

if TYPE_CHECKING:
    from pathlib import Path

Config = dict[str, Any]


def proxy_env(api: ScriptedEventsAPI) -> dict[str, str]:
    """Send every non-loopback request of the tap to the counting server."""
    return {
        "HTTP_PROXY": api.base_url,
        "HTTPS_PROXY": api.base_url,
        "http_proxy": api.base_url,
        "https_proxy": api.base_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def good_token(api: ScriptedEventsAPI) -> str:
    """A well-formed token whose aud names the counting server."""
    return mint_token([api.host_port])


Build = Callable[[ScriptedEventsAPI], Config]


def with_setting(name: str, value: Any) -> Build:
    """A valid loopback config with one setting added or changed."""
    return lambda api: {"token": good_token(api), "base_url": api.base_url, name: value}


def only_token(token: Any) -> Build:
    """A config with nothing but this token (its host comes from the token)."""
    return lambda _api: {"token": token}


def two_accounts(second: dict[str, Any]) -> Build:
    """Accounts ``acme`` (valid) and a second one given here; loopback base_url."""
    return lambda api: {
        "accounts": [{"name": "acme", "token": good_token(api)}, second],
        "base_url": api.base_url,
    }


# Each case: (id, config builder, words the error must contain). The words are what a user
# needs to find the mistake: the setting's name, or the account's.
CASES: list[tuple[str, Build, tuple[str, ...]]] = [
    ("no-token-no-accounts", lambda api: {"base_url": api.base_url}, ("token",)),
    (
        "token-and-accounts",
        lambda api: {
            "token": good_token(api),
            "accounts": [{"name": "a", "token": good_token(api)}],
            "base_url": api.base_url,
        },
        ("accounts",),
    ),
    ("token-int", with_setting("token", 12345), ("token",)),
    ("token-empty", with_setting("token", ""), ("token",)),
    ("token-blank", with_setting("token", "    "), ("token",)),
    ("token-list", lambda api: {"token": [good_token(api)], "base_url": api.base_url}, ("token",)),
    ("token-not-jwt", with_setting("token", "ops_notajwt_SECRETVALUE_0123456789"), ("token",)),
    ("token-three-garbage-parts", with_setting("token", "abc.SECRETgarbage!!.def"), ("token",)),
    (
        "token-claims-not-json",
        only_token("eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24gYXQgYWxsIFNFQ1JFVA.c2lnbmF0dXJlU0VDUkVU"),
        ("token",),
    ),
    (
        "token-expired",
        lambda api: {
            "token": mint_token([api.host_port], exp=1_600_000_000),
            "base_url": api.base_url,
        },
        ("expired",),
    ),
    ("token-without-aud", only_token(mint_token(None, omit_aud=True)), ("aud", "base_url")),
    ("token-aud-empty-list", only_token(mint_token([])), ("aud", "base_url")),
    ("token-aud-not-events-host", only_token(mint_token(["evil.example.com"])), ("host",)),
    (
        "token-aud-lookalike-host",
        only_token(mint_token(["events.1password.com.evil.example"])),
        ("host", "base_url"),
    ),
    (
        "token-aud-loopback",
        lambda api: {"token": mint_token([api.host_port])},
        ("host", "base_url"),
    ),
    (
        "token-aud-legacy-no-base-url",
        only_token(mint_token(["com.1password.streamingservice"])),
        ("base_url",),
    ),
    (
        "base-url-http-remote",
        with_setting("base_url", "http://events.1password.com"),
        ("base_url",),
    ),
    (
        "base-url-http-loopback-lookalike",
        with_setting("base_url", "http://127.0.0.1.evil.example:8080"),
        ("base_url",),
    ),
    (
        "base-url-http-userinfo-trick",
        with_setting("base_url", "http://localhost@evil.example/"),
        ("base_url",),
    ),
    ("base-url-ftp", with_setting("base_url", "ftp://127.0.0.1:21"), ("base_url",)),
    ("base-url-empty", with_setting("base_url", ""), ("base_url",)),
    ("base-url-blank", with_setting("base_url", "   "), ("base_url",)),
    (
        "base-url-empty-with-valid-aud",
        lambda _api: {"token": mint_token(["events.1password.com"]), "base_url": ""},
        ("base_url",),
    ),
    ("base-url-int", with_setting("base_url", 8080), ("base_url",)),
    ("base-url-no-host", with_setting("base_url", "https://"), ("base_url",)),
    ("api-version-v3", with_setting("api_version", "v3"), ("api_version",)),
    ("api-version-int", with_setting("api_version", 2), ("api_version",)),
    ("api-version-empty", with_setting("api_version", ""), ("api_version",)),
    ("start-date-words", with_setting("start_date", "yesterday"), ("start_date",)),
    ("start-date-empty", with_setting("start_date", ""), ("start_date",)),
    ("start-date-int", with_setting("start_date", 1700000000), ("start_date",)),
    ("end-date-garbage", with_setting("end_date", "2025-13-45"), ("end_date",)),
    ("end-date-empty", with_setting("end_date", ""), ("end_date",)),
    (
        "end-date-before-start-date",
        lambda api: {
            "token": good_token(api),
            "base_url": api.base_url,
            "start_date": "2025-06-02T00:00:00Z",
            "end_date": "2025-06-01T00:00:00Z",
        },
        ("end_date",),
    ),
    *[
        (f"{name}-{value!r}", with_setting(name, value), (name,))
        for name, values in (
            ("page_size", (0, 1001, -1, "100", 10.5, True)),
            ("request_timeout", (0, -5, "60", "")),
            ("max_requests_per_minute", (0, -1, "600")),
            ("max_requests_per_hour", (0, -1, "600")),
            ("lookback_minutes", (-1, "60", "", 1.5)),
            ("ca_bundle", ("", "/nonexistent/ca.pem", 5, False, "/")),
        )
        for value in values
    ],
    ("accounts-empty", lambda api: {"accounts": [], "base_url": api.base_url}, ("accounts",)),
    ("accounts-string", lambda api: {"accounts": "acme", "base_url": api.base_url}, ("accounts",)),
    (
        "accounts-entry-not-object",
        lambda api: {"accounts": ["acme"], "base_url": api.base_url},
        ("accounts",),
    ),
    (
        "accounts-missing-token",
        lambda api: {"accounts": [{"name": "acme"}], "base_url": api.base_url},
        ("token",),
    ),
    (
        "accounts-missing-name",
        lambda api: {"accounts": [{"token": good_token(api)}], "base_url": api.base_url},
        ("name",),
    ),
    ("accounts-empty-name", two_accounts({"name": "", "token": "x.y.z"}), ("name",)),
    ("accounts-blank-name", two_accounts({"name": "  ", "token": "x.y.z"}), ("name",)),
    ("accounts-name-int", two_accounts({"name": 7, "token": "x.y.z"}), ("name",)),
    (
        "accounts-duplicate-names",
        lambda api: {
            "accounts": [
                {"name": "acme", "token": good_token(api)},
                {"name": "acme", "token": good_token(api)},
            ],
            "base_url": api.base_url,
        },
        ("acme",),
    ),
    (
        "accounts-second-token-not-jwt",
        two_accounts({"name": "globex", "token": "SECRET-not-a-jwt-globex-000000"}),
        ("globex",),
    ),
    (
        "accounts-base-url-http-remote",
        lambda api: {
            "accounts": [
                {"name": "acme", "token": good_token(api), "base_url": api.base_url},
                {
                    "name": "globex",
                    "token": good_token(api),
                    "base_url": "http://events.1password.eu",
                },
            ],
        },
        ("base_url",),
    ),
    (
        "accounts-base-url-empty",
        lambda api: {
            "accounts": [{"name": "acme", "token": good_token(api), "base_url": ""}],
            "base_url": api.base_url,
        },
        ("base_url",),
    ),
]


def all_strings(value: Any) -> list[str]:
    """Every string inside a config value (tokens are searched for in the output)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


def config_secrets(config: Config) -> list[str]:
    """Fragments of every token-like value of a config that must never be printed."""
    tokens: list[str] = []
    if isinstance(config.get("token"), str):
        tokens.append(config["token"])
    accounts = config.get("accounts")
    if isinstance(accounts, list):
        tokens += [
            a["token"] for a in accounts if isinstance(a, dict) and isinstance(a.get("token"), str)
        ]
    fragments: list[str] = []
    for token in tokens:
        if len(token) >= 12:
            fragments += secret_fragments(token) if token.count(".") == 2 else [token]
    return fragments


@pytest.mark.parametrize(("build", "words"), [pytest.param(b, w, id=i) for i, b, w in CASES])
def test_bad_setting_fails_cleanly_before_any_request(
    tap_forks: ForkServer,
    scripted_api: ScriptedEventsAPI,
    tmp_path: Path,
    build: Any,
    words: tuple[str, ...],
) -> None:
    config = build(scripted_api)
    result = tap_forks.run(tmp_path, config, env=proxy_env(scripted_api), timeout=60)
    assert_clean_failure(result, *words)
    assert scripted_api.exchanges == [], (
        "requests were sent before the config was rejected: "
        + ", ".join(f"{e.method} {e.path}" for e in scripted_api.exchanges)
    )
    assert result.output.messages == [], "a rejected config must print no Singer message"
    for fragment in config_secrets(config):
        assert fragment not in result.stderr, "a token appears in the error output"
        assert fragment not in result.stdout, "a token appears on stdout"


@pytest.mark.parametrize(
    ("option", "text", "words"),
    [
        pytest.param("--config", "{not json", ("--config", "json"), id="config-not-json"),
        pytest.param("--config", '["token"]', ("--config", "object"), id="config-a-list"),
        pytest.param("--config", "\udcff", ("--config",), id="config-not-utf8"),
        pytest.param("--state", "{not json", ("--state", "json"), id="state-not-json"),
        pytest.param("--state", "[1, 2]", ("--state", "object"), id="state-a-list"),
        pytest.param("--catalog", "{not json", ("--catalog", "json"), id="catalog-not-json"),
        pytest.param("--catalog", '"streams"', ("--catalog", "object"), id="catalog-a-string"),
    ],
)
def test_unreadable_input_file_fails_cleanly_naming_it(  # noqa: PLR0913, PLR0917 - fixtures
    tap_forks: ForkServer,
    scripted_api: ScriptedEventsAPI,
    tmp_path: Path,
    option: str,
    text: str,
    words: tuple[str, ...],
) -> None:
    bad = tmp_path / "bad-file.json"
    bad.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    config = {"token": good_token(scripted_api), "base_url": scripted_api.base_url}
    args: tuple[str, ...] = (option, str(bad))
    result = tap_forks.run(
        tmp_path, None if option == "--config" else config, args=args, env=proxy_env(scripted_api)
    )
    assert_clean_failure(result, "bad-file.json", *words)
    assert scripted_api.exchanges == []


BAD_STATES: list[tuple[str, Any]] = [
    ("bookmarks-a-list", {"bookmarks": []}),
    ("stream-state-a-list", {"bookmarks": {"sign_in_attempts": []}}),
    ("partitions-a-string", {"bookmarks": {"sign_in_attempts": {"partitions": "acme"}}}),
    ("partition-without-context", {"bookmarks": {"sign_in_attempts": {"partitions": [{}]}}}),
    *[
        (
            f"partition-{key}-{label}",
            {
                "bookmarks": {
                    "sign_in_attempts": {
                        "partitions": [
                            {
                                "context": {"account_name": "default"},
                                "cursor": "STALE",
                                "cursor_endpoint": "/api/v2/signinattempts",
                                key: value,
                            }
                        ]
                    }
                }
            },
        )
        for key, label, value in (
            ("cursor", "int", 12345),
            ("cursor", "object", {"a": 1}),
            ("cursor_endpoint", "int", 2),
            ("cursor_max_timestamp", "garbage", "last tuesday"),
            ("cursor_max_timestamp", "int", 1700000000),
            ("replication_key_value", "garbage", "soon"),
        )
    ],
]


@pytest.mark.parametrize("state", [pytest.param(s, id=i) for i, s in BAD_STATES])
def test_damaged_state_is_survived_or_refused_cleanly(
    tap_forks: ForkServer, scripted_api: ScriptedEventsAPI, tmp_path: Path, state: Any
) -> None:
    """A state store can be damaged. Go on from start_date (with a warning), or stop with one
    clear line; never an unexpected crash."""
    config = {"token": good_token(scripted_api), "base_url": scripted_api.base_url}
    result = tap_forks.run(tmp_path, config, state=state, env=proxy_env(scripted_api))
    if result.returncode != 0:
        assert_clean_failure(result, "state")
    else:
        assert_no_traceback(result)
        assert result.output.last_state() is not None


def test_missing_config_file_fails_cleanly(scripted_api: ScriptedEventsAPI, tmp_path: Path) -> None:
    result = run_tap(
        tmp_path,
        None,
        args=("--config", str(tmp_path / "absent.json")),
        env=proxy_env(scripted_api),
    )
    assert_clean_failure(result, "absent.json")
    assert scripted_api.exchanges == []


def test_counting_server_sees_remote_requests_through_the_proxy(
    scripted_api: ScriptedEventsAPI, tmp_path: Path
) -> None:
    """Positive control: a valid remote config does reach the counter, so zero above means zero.

    The token names the real US Events host; the tap honours the standard proxy variables (as
    corporate networks need), so its first request arrives here as a CONNECT.
    """
    config = {"token": mint_token(["events.1password.com"]), "request_timeout": 5}
    result = run_tap(tmp_path, config, env=proxy_env(scripted_api), timeout=120)
    assert_no_traceback(result)
    assert any(e.method == "CONNECT" for e in scripted_api.exchanges), (
        f"no request reached the counting proxy; stderr:\n{result.stderr[-2000:]}"
    )
    assert all("events.1password.com" in e.path for e in scripted_api.exchanges)


def test_counting_server_sees_loopback_requests(
    scripted_api: ScriptedEventsAPI, tmp_path: Path
) -> None:
    """Positive control for loopback ``base_url`` values: a valid config is served and counted."""
    config = {"token": good_token(scripted_api), "base_url": scripted_api.base_url}
    result = run_tap(tmp_path, config, env=proxy_env(scripted_api))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_no_traceback(result)
    assert scripted_api.data_exchanges(), "the valid run sent no data request"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PAGE_SIZE", "abc"),
        ("MAX_REQUESTS_PER_HOUR", "1.5"),
        ("ACCOUNTS", "not json"),
        ("ACCOUNTS", '[{"name": "acme", "token": "unterminated'),
        ("REQUEST_TIMEOUT", "30"),
        ("BASE_URL", "http://events.1password.com"),
    ],
)
def test_bad_settings_from_the_environment_name_the_variable(
    tap_forks: ForkServer,
    scripted_api: ScriptedEventsAPI,
    tmp_path: Path,
    variable: str,
    value: str,
) -> None:
    """`--config ENV`: the one line names the variable; no request; no value echoed."""
    token = good_token(scripted_api)
    env = {
        **proxy_env(scripted_api),
        "TAP_ONEPASSWORD_TOKEN": token,
        "TAP_ONEPASSWORD_BASE_URL": scripted_api.base_url,
        f"TAP_ONEPASSWORD_{variable}": value,
    }
    result = tap_forks.run(tmp_path, None, args=("--config", "ENV"), env=env)
    name = variable.lower()
    assert_clean_failure(result, name)
    assert scripted_api.exchanges == []
    for fragment in secret_fragments(token):
        assert fragment not in result.stderr
