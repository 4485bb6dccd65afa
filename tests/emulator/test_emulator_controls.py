"""The /_emulator/ HTTP controls drive the same behaviour as the Python API."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from onepassword_emulator import Emulator

if TYPE_CHECKING:
    import requests

OLD = "2020-01-01T00:00:00Z"


def _control(  # noqa: PLR0913 - the request and the status it must get
    emu: Emulator,
    http: requests.Session,
    method: str,
    route: str,
    body: dict | None = None,
    *,
    expect: int = 200,
) -> dict:
    response = http.request(method, f"{emu.base_url}/_emulator/{route}", json=body, timeout=5)
    assert response.status_code == expect, response.text
    return response.json()


def test_accounts_and_tokens(emu: Emulator, http: requests.Session) -> None:
    listed = _control(emu, http, "GET", "accounts")
    assert listed["base_url"] == emu.base_url
    assert [a["name"] for a in listed["accounts"]] == ["acme", "globex", "initech"]
    assert listed["accounts"][1]["msp"] is True
    assert listed["accounts"][0]["token"] == emu.account("acme").token
    token = _control(
        emu,
        http,
        "POST",
        "tokens",
        {"account": "initech", "features": ["itemusages"], "exp": 4_000_000_000},
    )["token"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["1password.com/fts"] == ["itemusages"]
    assert claims["exp"] == 4_000_000_000
    ok = http.post(
        f"{emu.base_url}/api/v2/itemusages",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert ok.status_code == 200
    assert "error" in _control(emu, http, "POST", "tokens", {"account": "nobody"}, expect=400)


def test_events_read_and_added(emu: Emulator, http: requests.Session) -> None:
    read = _control(emu, http, "GET", "events?account=globex&feature=itemusages&version=v1")[
        "items"
    ]
    assert read == emu.events("globex", "itemusages", version="v1")
    added = _control(
        emu,
        http,
        "POST",
        "events",
        {"account": "globex", "feature": "itemusages", "count": 3, "late": True},
    )["items"]
    assert len(added) == 3
    assert all("account_uuid" in item for item in added)  # v2 by default, MSP account
    assert [e["uuid"] for e in emu.events("globex", "itemusages")[-3:]] == [
        e["uuid"] for e in added
    ]
    assert "error" in _control(
        emu, http, "POST", "events", {"account": "globex", "feature": "logins"}, expect=400
    )


def test_faults_over_http(emu: Emulator, http: requests.Session) -> None:
    scheduled = _control(
        emu,
        http,
        "POST",
        "faults",
        {"path": "/api/v2/signinattempts", "fault": "429", "count": 2, "retry_after": 5},
    )
    assert scheduled["scheduled"] == {
        "path": "/api/v2/signinattempts",
        "fault": "429",
        "remaining": 2,
        "retry_after": 5,
    }
    headers = {"Authorization": f"Bearer {emu.account('acme').token}"}
    limited = http.post(
        f"{emu.base_url}/api/v2/signinattempts", json={}, headers=headers, timeout=5
    )
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "5"
    assert _control(emu, http, "GET", "faults")["faults"][0]["remaining"] == 1
    assert _control(emu, http, "DELETE", "faults") == {"faults": []}
    assert (
        http.post(
            f"{emu.base_url}/api/v2/signinattempts", json={}, headers=headers, timeout=5
        ).status_code
        == 200
    )
    assert (
        "unknown fault"
        in _control(emu, http, "POST", "faults", {"path": "*", "fault": "404"}, expect=400)["error"]
    )


def test_request_log_rotation_time_and_limits(emu: Emulator, http: requests.Session) -> None:
    headers = {"Authorization": f"Bearer {emu.account('acme').token}"}
    url = f"{emu.base_url}/api/v2/auditevents"
    cursor = http.post(
        url, json={"start_time": OLD, "limit": 2}, headers=headers, timeout=5
    ).json()["cursor"]
    log = _control(emu, http, "GET", "requests")["requests"]
    assert [(r["method"], r["path"], r["status"], r["account"], r["body"]) for r in log] == [
        ("POST", "/api/v2/auditevents", 200, "acme", {"start_time": OLD, "limit": 2})
    ]
    assert emu.account("acme").token not in json.dumps(log)
    assert _control(emu, http, "DELETE", "requests") == {"requests": []}
    assert _control(emu, http, "POST", "rotate-secret") == {"rotated": True}
    assert http.post(url, json={"cursor": cursor}, headers=headers, timeout=5).status_code == 400

    before = emu.now
    moved = _control(emu, http, "POST", "time", {"advance": 86_400})["now"]
    moved_at = datetime.fromisoformat(moved[:19] + "+00:00")
    assert (
        timedelta(days=1) <= moved_at - before.replace(microsecond=0) < timedelta(days=1, minutes=1)
    )
    assert _control(emu, http, "POST", "time", {"set": "2031-05-06T07:08:09Z"})["now"].startswith(
        "2031-05-06T07:08"
    )
    assert emu.now.year == 2031
    assert _control(emu, http, "GET", "time")["now"].startswith("2031-05-06")

    with Emulator(seed=1, events=5, rate_limit_per_minute=1) as limited:
        token = {"Authorization": f"Bearer {limited.account('acme').token}"}
        introspect = f"{limited.base_url}/api/v2/auth/introspect"
        assert http.get(introspect, headers=token, timeout=5).status_code == 200
        assert http.get(introspect, headers=token, timeout=5).status_code == 429
        assert _control(limited, http, "POST", "rate-limits/reset") == {"reset": True}
        assert http.get(introspect, headers=token, timeout=5).status_code == 200


def test_unknown_controls_and_bad_bodies(emu: Emulator, http: requests.Session) -> None:
    assert "no control route" in _control(emu, http, "GET", "nothing", expect=404)["error"]
    assert "no control route" in _control(emu, http, "DELETE", "accounts", expect=404)["error"]
    bad = http.post(f"{emu.base_url}/_emulator/faults", data=b"not json", timeout=5)
    assert bad.status_code == 400
    assert "error" in bad.json()
    assert (
        "missing 'path'"
        in _control(emu, http, "POST", "faults", {"fault": "500"}, expect=400)["error"]
    )
    assert "soon" in _control(emu, http, "POST", "time", {"advance": "soon"}, expect=400)["error"]
    assert "error" in _control(emu, http, "POST", "time", {"set": "tomorrow"}, expect=400)
