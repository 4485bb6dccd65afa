"""Proxy and CA-bundle variables are read once per account session, not on every request,
and still apply; a ~/.netrc entry never replaces the bearer token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests.utils

from tap_onepassword.tap import TapOnePassword
from tests.support.compare import config_for
from tests.support.runs import run_tap

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from onepassword_emulator import Emulator


def test_the_environment_is_read_once_per_session_not_per_request(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = requests.utils.get_environ_proxies

    def counted(url: str, no_proxy: Any = None) -> dict[str, str]:
        reads.append(url)
        return real(url, no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counted)
    monkeypatch.setattr("requests.sessions.get_environ_proxies", counted)
    run_tap(config_for(emulator, page_size=100))
    data_requests = [r for r in emulator.requests if r.method == "POST"]
    assert len(data_requests) == 8 * 7  # 8 stream/account partitions of 7 pages
    # One session per stream and account (introspection's included), each read once.
    assert 0 < len(reads) <= 4 * 3


def test_proxy_and_bundle_variables_still_apply(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "from-environment.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    token = emulator.account("acme").token
    tap = TapOnePassword(config={"token": token, "base_url": "https://events.example"})
    client = tap.run.client
    (account,) = tap.settings.accounts
    session = client.session_for(account)
    assert session.proxies["https"] == "http://proxy.example:3128"
    assert client._verify[account.name] == str(bundle)

    chosen = tmp_path / "chosen.pem"
    chosen.write_text("-----BEGIN CERTIFICATE-----\n")
    tap = TapOnePassword(
        config={"token": token, "base_url": "https://events.example", "ca_bundle": str(chosen)}
    )
    client = tap.run.client
    client.session_for(account)
    assert client._verify[account.name] == str(chosen)  # the setting wins

    monkeypatch.setenv("NO_PROXY", "events.example")
    tap = TapOnePassword(config={"token": token, "base_url": "https://events.example"})
    assert "https" not in tap.run.client.session_for(account).proxies


def test_a_netrc_entry_does_not_replace_the_bearer_token(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password something\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    messages = run_tap(config_for(emulator, page_size=1000))
    assert sum(m["type"] == "RECORD" for m in messages) == 5600 + 3
    assert {r.status for r in emulator.requests} == {200}
