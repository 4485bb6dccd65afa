"""Switches for the API's rougher edges: a final page served again, a slow drip, a revoked token."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from onepassword_emulator import Emulator

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

URL_PATH = "/api/v2/signinattempts"


def post(
    http: requests.Session, emu: Emulator, token: str, body: dict[str, Any]
) -> requests.Response:
    return http.post(
        emu.base_url + URL_PATH,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def uuids(response: requests.Response) -> list[str]:
    return [item["uuid"] for item in response.json()["items"]]


@pytest.mark.parametrize("switch", [False, True])
def test_a_final_cursor_serves_the_final_page_again_only_under_the_switch(
    http: requests.Session,
    switch: bool,  # noqa: FBT001 - pytest passes parameters by name
) -> None:
    with Emulator(seed=5, events=30, re_serve_final_page=switch) as emu:
        token = emu.account("acme").token
        first = post(http, emu, token, {"limit": 20, "start_time": "2000-01-01T00:00:00Z"})
        assert first.json()["has_more"] is True
        last = post(http, emu, token, {"cursor": first.json()["cursor"]})
        assert last.json()["has_more"] is False
        assert len(uuids(last)) == 10
        added = emu.add_events("acme", "signinattempts", 2)
        again = post(http, emu, token, {"cursor": last.json()["cursor"]})
        new = [event["uuid"] for event in added]
        assert uuids(again) == (uuids(last) + new if switch else new)
        # Nothing new: the same page again under the switch, nothing otherwise.
        once_more = post(http, emu, token, {"cursor": again.json()["cursor"]})
        assert uuids(once_more) == (uuids(again) if switch else [])


def test_the_switch_is_also_a_control_route_and_a_flag(
    emu: Emulator, http: requests.Session
) -> None:
    assert http.get(emu.base_url + "/_emulator/switches", timeout=10).json() == {
        "re_serve_final_page": False
    }
    answer = http.post(
        emu.base_url + "/_emulator/switches", json={"re_serve_final_page": True}, timeout=10
    )
    assert answer.json() == {"re_serve_final_page": True}
    assert emu.re_serve_final_page is True
    exe = Path(sys.executable).with_name("tap-onepassword-emulator")
    process = subprocess.Popen(
        [exe, "--port", "0", "--events", "3", "--re-serve-final-page"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = json.loads(process.stdout.readline())
        switches = http.get(line["base_url"] + "/_emulator/switches", timeout=10).json()
        assert switches == {"re_serve_final_page": True}
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_drip_sends_the_whole_answer_slowly_but_each_piece_promptly(emu: Emulator) -> None:
    emu.fail_next(URL_PATH, "drip", seconds=1.5)
    body = json.dumps({"limit": 5, "start_time": "2000-01-01T00:00:00Z"}).encode()
    host, port = emu.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST " + URL_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/json\r\nAuthorization: Bearer "
            + emu.account("acme").token.encode()
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        started = time.monotonic()
        gaps, received, last = [], b"", started
        while chunk := sock.recv(65536):
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    head, _, payload = received.partition(b"\r\n\r\n")
    assert len(json.loads(payload)["items"]) == 5
    assert last - started >= 1.2  # the whole answer took the drip's time
    assert max(gaps) < 0.5  # yet no wait between two pieces came near a read time-out
    assert b"Content-Length: " + str(len(payload)).encode() in head
    assert [r.fault for r in emu.requests] == ["drip"]


def test_a_revoked_token_is_refused_until_restored(
    emu: Emulator, http: requests.Session, bearer: Callable[[str], dict[str, str]]
) -> None:
    acme, globex = emu.account("acme").token, emu.account("globex").token
    introspect = emu.base_url + "/api/v2/auth/introspect"
    emu.revoke_token(acme)
    assert http.get(introspect, headers=bearer(acme), timeout=10).status_code == 401
    assert http.get(introspect, headers=bearer(globex), timeout=10).status_code == 200
    emu.restore_token(acme)
    assert http.get(introspect, headers=bearer(acme), timeout=10).status_code == 200
    # The same over the control routes, for an emulator in another process.
    revoke = http.post(
        emu.base_url + "/_emulator/tokens/revoke", json={"token": globex}, timeout=10
    )
    assert revoke.json() == {"revoked": True}
    assert http.get(introspect, headers=bearer(globex), timeout=10).status_code == 401
    http.post(emu.base_url + "/_emulator/tokens/restore", json={"token": globex}, timeout=10)
    assert http.get(introspect, headers=bearer(globex), timeout=10).status_code == 200
    refused = http.post(
        emu.base_url + "/_emulator/tokens/revoke", json={"token": "x.y.z"}, timeout=10
    )
    assert refused.status_code == 400
