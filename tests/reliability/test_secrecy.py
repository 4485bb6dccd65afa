"""Secrecy: no token, of any account, in any output; TLS verification cannot be turned off.

Every run here is a multi-account run at DEBUG, and every byte the tap writes (stdout with its
records, state and catalog; stderr with logs, metrics and errors) is searched for each token and
for each token's secret segments (a truncated token leaks as much as a whole one).
"""

from __future__ import annotations

import json
import ssl
import subprocess
from typing import TYPE_CHECKING, Any

import certifi
import pytest

from tests.reliability.harness import (
    ForkServer,
    TapResult,
    assert_clean_failure,
    assert_no_traceback,
    run_tap,
    secret_fragments,
)
from tests.reliability.scripted_api import Reply, ScriptedEventsAPI
from tests.support.tokens import mint_token

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

DEBUG = {"LOGLEVEL": "DEBUG", "TAP_ONEPASSWORD_LOGLEVEL": "DEBUG"}


def assert_no_secret(tokens: list[str], *texts: str) -> None:
    """None of the texts holds any token or any secret segment of one."""
    for token in tokens:
        for fragment in secret_fragments(token):
            for text in texts:
                assert fragment not in text, "a token (or part of one) was printed"


def all_output(result: TapResult) -> str:
    """Everything a run wrote."""
    return result.stdout + "\n" + result.stderr


@pytest.fixture
def emu(emulator_factory: Callable[..., Any]) -> Any:
    """The default three accounts, a little data each."""
    return emulator_factory(seed=11, events=120)


def accounts_config(emu: Any, **extra: Any) -> dict[str, Any]:
    """Every emulator account, by name, with its own token."""
    return {
        "accounts": [{"name": a.name, "token": a.token} for a in emu.accounts],
        "base_url": emu.base_url,
        "page_size": 50,
        **extra,
    }


def test_multi_account_run_at_debug_prints_no_token(emu: Any, tmp_path: Path) -> None:
    tokens = [a.token for a in emu.accounts]
    result = run_tap(tmp_path, accounts_config(emu), env=DEBUG)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_no_traceback(result)
    assert "DEBUG" in result.stderr, "the run did not log at DEBUG; the check would be weak"
    assert len(result.output.records()) > 0
    assert_no_secret(tokens, all_output(result))
    state = result.output.last_state()
    assert state is not None
    assert_no_secret(tokens, json.dumps(state))
    # the state identifies accounts by name only
    names = {a.name for a in emu.accounts}
    for stream_state in state.get("bookmarks", {}).values():
        for partition in stream_state.get("partitions", []):
            assert set(partition["context"]) == {"account_name"}
            assert partition["context"]["account_name"] in names

    # a second run resumes from that state: still nothing printed
    again = run_tap(tmp_path, accounts_config(emu), state=state, env=DEBUG, name="again")
    assert again.returncode == 0, again.stderr[-3000:]
    assert_no_secret(tokens, all_output(again))


def test_discover_about_and_test_modes_print_no_token(emu: Any, tmp_path: Path) -> None:
    tokens = [a.token for a in emu.accounts]
    config = accounts_config(emu)
    for args in (
        ("--discover",),
        ("--about", "--format", "json"),
        ("--about", "--format", "markdown"),
        ("--test",),
    ):
        result = run_tap(tmp_path, config, args=args, env=DEBUG, name=args[0].strip("-"))
        assert result.returncode == 0, f"{args}: {result.stderr[-3000:]}"
        assert_no_traceback(result)
        assert_no_secret(tokens, all_output(result))
    catalog = json.loads(run_tap(tmp_path, config, args=("--discover",), name="catalog").stdout)
    assert {s["tap_stream_id"] for s in catalog["streams"]} >= {
        "sign_in_attempts",
        "item_usages",
        "audit_events",
        "introspection",
    }


def test_config_from_environment_prints_no_token(emu: Any, tmp_path: Path) -> None:
    token = emu.account("acme").token
    env = {**DEBUG, "TAP_ONEPASSWORD_TOKEN": token, "TAP_ONEPASSWORD_BASE_URL": emu.base_url}
    result = run_tap(tmp_path, None, args=("--config", "ENV"), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.output.records()
    assert_no_secret([token], all_output(result))


@pytest.mark.parametrize(
    ("fault", "count", "words"),
    [
        pytest.param("500", 40, (), id="5xx-until-retries-run-out"),
        pytest.param("reset", 40, (), id="connection-resets-until-retries-run-out"),
        pytest.param("reject_cursor", 40, (), id="400-on-every-request"),
    ],
)
def test_error_messages_print_no_token(
    emu: Any, tmp_path: Path, fault: str, count: int, words: tuple[str, ...]
) -> None:
    tokens = [a.token for a in emu.accounts]
    emu.fail_next("*", fault, count=count)
    result = run_tap(tmp_path, accounts_config(emu, request_timeout=2), env=DEBUG)
    assert_clean_failure(result, *words)
    assert_no_secret(tokens, all_output(result))


def test_refused_token_names_the_account_not_the_token(emu: Any, tmp_path: Path) -> None:
    """A token the server does not know (another key): 401 names the account and the causes."""
    stranger = mint_token([emu.base_url.removeprefix("http://")])
    config = {
        "accounts": [
            {"name": "acme", "token": emu.account("acme").token},
            {"name": "stranger", "token": stranger},
        ],
        "base_url": emu.base_url,
    }
    result = run_tap(tmp_path, config, env=DEBUG)
    assert_clean_failure(result, "stranger", "401")
    assert_no_secret([stranger, emu.account("acme").token], all_output(result))


def test_token_does_not_follow_a_redirect_to_another_host(tmp_path: Path) -> None:
    """A 307 to another host must not carry the Authorization header (nor any token) there."""
    with ScriptedEventsAPI(host="127.0.0.2") as elsewhere, ScriptedEventsAPI() as api:
        api.redirect_all_to = elsewhere.base_url
        token = mint_token([api.host_port])
        result = run_tap(tmp_path, {"token": token, "base_url": api.base_url}, env=DEBUG)
        assert_no_traceback(result)
        assert api.exchanges, "the tap sent nothing"
        for exchange in elsewhere.exchanges:
            assert "authorization" not in exchange.headers
            assert_no_secret([token], json.dumps(exchange.headers), exchange.body.decode("latin-1"))
        assert_no_secret([token], all_output(result))


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(401, b'{"Error":{"Message":"bad token {auth}"}}'), id="401-json"),
        pytest.param(Reply(400, b'{"status":400,"message":"rejected {auth}"}'), id="400-json"),
        pytest.param(Reply(500, b"upstream said: {auth}", "text/plain"), id="500-text"),
        pytest.param(Reply(404, b"no route for {auth}", "text/plain"), id="404-text"),
        pytest.param(Reply(200, b"<html>{auth}</html>", "text/html"), id="200-not-json"),
    ],
)
def test_a_server_echoing_the_token_does_not_get_it_printed(
    tap_forks: ForkServer, tmp_path: Path, reply: Reply
) -> None:
    """Error details quote the server's answer; a reflected Authorization must be cut out."""
    with ScriptedEventsAPI(reflect_authorization=reply) as api:
        token = mint_token([api.host_port])
        result = tap_forks.run(tmp_path, {"token": token, "base_url": api.base_url}, env=DEBUG)
        assert api.exchanges, "the tap sent nothing"
    assert_clean_failure(result)
    assert_no_secret([token], all_output(result))


# ---- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 that no trust store knows."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_api(self_signed: tuple[Path, Path]) -> Iterator[ScriptedEventsAPI]:
    """The scripted API over HTTPS with the self-signed certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    api = ScriptedEventsAPI(
        tls=context,
        script={
            "signinattempts": [
                Reply(200, json.dumps({"cursor": "C1", "has_more": False, "items": []}).encode())
            ]
        },
    ).start()
    try:
        yield api
    finally:
        api.stop()


# Every way a user (or a careless example config) might try to switch verification off.
DISABLERS: list[dict[str, Any]] = [
    {
        "verify_ssl": False,
        "verify": False,
        "tls_verify": False,
        "ssl_verify": False,
        "insecure": True,
        "disable_tls_verification": True,
        "ca_bundle": False,
    },
]
DISABLING_ENV = {"CURL_CA_BUNDLE": "", "REQUESTS_CA_BUNDLE": "", "PYTHONHTTPSVERIFY": "0"}


def test_tls_verification_cannot_be_turned_off(tls_api: ScriptedEventsAPI, tmp_path: Path) -> None:
    token = mint_token([tls_api.host_port])
    for n, extra in enumerate([{}, *DISABLERS]):
        config = {"token": token, "base_url": tls_api.base_url, "request_timeout": 5, **extra}
        result = run_tap(tmp_path, config, env={**DEBUG, **DISABLING_ENV}, name=f"tls{n}")
        # either the disabling setting is refused as bad config, or the handshake is refused
        assert_clean_failure(result)
        assert tls_api.exchanges == [], "a request got through an unverified TLS connection"
        assert_no_secret([token], all_output(result))
    assert (
        "certificate" in result.stderr.lower()
        or "ssl" in result.stderr.lower()
        or "tls" in result.stderr.lower()
    )


def test_a_ca_bundle_is_the_way_to_trust_a_private_certificate(
    tls_api: ScriptedEventsAPI, self_signed: tuple[Path, Path], tmp_path: Path
) -> None:
    about = json.loads(run_tap(tmp_path, None, args=("--about", "--format", "json")).stdout)
    names = [n for n in about["settings"]["properties"] if "ca" in n.split("_")]
    assert len(names) == 1, f"expected one CA bundle setting, found {names}"
    token = mint_token([tls_api.host_port], features=["signinattempts"])
    config = {"token": token, "base_url": tls_api.base_url, names[0]: str(self_signed[0])}
    # Many machines (CI images, corporate laptops) set these; the setting must still win.
    bundle_env = {"REQUESTS_CA_BUNDLE": certifi.where(), "CURL_CA_BUNDLE": certifi.where()}
    result = run_tap(tmp_path, config, env={**DEBUG, **bundle_env})
    assert result.returncode == 0, result.stderr[-3000:]
    assert any(e.path.startswith("/api/") for e in tls_api.exchanges)
    assert_no_secret([token], all_output(result))
