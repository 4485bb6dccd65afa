"""The tap-onepassword-emulator command: one JSON line, serving, clean exits, one-line errors."""

from __future__ import annotations

import json
import selectors
import shutil
import signal
import socket
import subprocess
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from collections.abc import Iterator

EXE = shutil.which("tap-onepassword-emulator")


def _first_line(process: subprocess.Popen[str], timeout: float = 30) -> str:
    selector = selectors.DefaultSelector()
    assert process.stdout is not None
    selector.register(process.stdout, selectors.EVENT_READ)
    assert selector.select(timeout), "the emulator printed nothing"
    return process.stdout.readline()


@pytest.fixture
def launch() -> Iterator:
    started: list[subprocess.Popen[str]] = []

    def run(*args: str) -> subprocess.Popen[str]:
        assert EXE is not None, "tap-onepassword-emulator is not installed"
        process = subprocess.Popen(
            [EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_prints_one_json_line_serves_and_exits_cleanly(launch, stop_signal: signal.Signals) -> None:
    process = launch(
        "--port", "0", "--seed", "3", "--events", "20", "--error-style", "status",
        "--rate-limit-per-minute", "2", "--retry-after", "9",
    )  # fmt: skip
    line = json.loads(_first_line(process))
    assert set(line) == {"base_url", "accounts"}
    assert line["base_url"].startswith("http://127.0.0.1:")
    assert [a["name"] for a in line["accounts"]] == ["acme", "globex", "initech"]
    assert set(line["accounts"][0]) == {"name", "token", "account_uuid", "features"}
    assert line["accounts"][2]["features"] == ["signinattempts", "auditevents"]
    token = line["accounts"][0]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    page = requests.post(
        f"{line['base_url']}/api/v1/auditevents",
        json={"start_time": "2020-01-01T00:00:00Z"},
        headers=headers,
        timeout=10,
    ).json()
    assert len(page["items"]) == 20
    refused = requests.post(f"{line['base_url']}/api/v1/auditevents", json={}, timeout=10)
    assert refused.json() == {"status": 401, "message": "Unauthorized"}
    introspect = f"{line['base_url']}/api/v2/auth/introspect"
    assert requests.get(introspect, headers=headers, timeout=10).status_code == 200
    limited = requests.get(introspect, headers=headers, timeout=10)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "9"
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert out == ""  # nothing after the one line
    assert err == ""


def test_tokens_outlive_a_restart_with_the_same_seed(launch) -> None:
    first = launch("--port", "0", "--seed", "9", "--events", "5")
    token = json.loads(_first_line(first))["accounts"][0]["token"]
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=20)
    headers = {"Authorization": f"Bearer {token}"}
    for seed, status in (("9", 200), ("10", 401)):
        again = launch("--port", "0", "--seed", seed, "--events", "5")
        url = json.loads(_first_line(again))["base_url"] + "/api/v2/auth/introspect"
        assert requests.get(url, headers=headers, timeout=10).status_code == status
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=20)


@pytest.mark.parametrize(
    "args",
    [
        ["--events", "-1"],
        ["--port", "70000"],
        ["--error-style", "xml"],
        ["--latency-ms", "fast"],
        ["--bogus"],
        ["--rate-limit-per-hour", "0"],
    ],
)
def test_bad_arguments_end_in_one_line_and_exit_2(launch, args: list[str]) -> None:
    process = launch(*args)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("tap-onepassword-emulator: error:")


def test_a_busy_port_ends_in_one_line_and_exit_1(launch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        process = launch("--port", str(busy.getsockname()[1]), "--events", "1")
        out, err = process.communicate(timeout=20)
    assert process.returncode == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "cannot serve on 127.0.0.1" in err
    assert "Traceback" not in err


def test_the_v3_legacy_names_switch_from_the_command_line(launch) -> None:
    process = launch("--port", "0", "--events", "5", "--v3-legacy-names")
    line = json.loads(_first_line(process))
    headers = {"Authorization": f"Bearer {line['accounts'][0]['token']}"}
    url = line["base_url"] + "/api/v3/auditevents"
    legacy = requests.get(url, params={"page_size": 2}, headers=headers, timeout=10)
    assert legacy.status_code == 200
    assert set(legacy.json()) == {"audit_events", "next_page_token", "has_more"}
    current = requests.get(url, params={"max_page_size": 2}, headers=headers, timeout=10)
    assert current.status_code == 400
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
