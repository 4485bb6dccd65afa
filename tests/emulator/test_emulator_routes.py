"""Routes, introspection, 404s and tokens."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
import requests

from onepassword_emulator import AccountSpec, Emulator
from onepassword_emulator.data import FEATURES

Bearer = Callable[[str], dict[str, str]]
DATA_PATHS = [f"/api/{v}/{f}" for v in ("v1", "v2") for f in FEATURES]


def _claims(token: str) -> dict:
    parts = token.split(".")
    assert len(parts) == 3
    for part in parts:
        assert set(part) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    assert header["alg"] == "ES256"
    return json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))


def test_default_accounts(emu: Emulator) -> None:
    by_name = {account.name: account for account in emu.accounts}
    assert list(by_name) == ["acme", "globex", "initech"]
    assert by_name["acme"].features == ["signinattempts", "itemusages", "auditevents"]
    assert by_name["globex"].msp is True
    assert by_name["acme"].msp is False
    assert by_name["initech"].features == ["signinattempts", "auditevents"]
    assert len({account.account_uuid for account in emu.accounts}) == 3
    assert emu.account("globex") is by_name["globex"]
    with pytest.raises(KeyError, match="no account named"):
        emu.account("umbrella")


def test_tokens_are_jwt_shaped_with_the_documented_claims(emu: Emulator) -> None:
    host_port = emu.base_url.removeprefix("http://")
    for account in emu.accounts:
        claims = _claims(account.token)
        assert claims["aud"][0] == host_port
        assert claims["1password.com/fts"] == account.features
        assert claims["1password.com/auuid"] == account.account_uuid
        assert isinstance(claims["iat"], int)
        assert claims["jti"]
        assert "exp" not in claims
    minted = emu.mint_token(
        "acme", features=["itemusages"], exp=2_000_000_000, aud=["events.1password.com"]
    )
    claims = _claims(minted)
    assert claims["exp"] == 2_000_000_000
    assert claims["aud"] == ["events.1password.com"]
    assert claims["1password.com/fts"] == ["itemusages"]


def test_introspection_v1_and_v2(emu: Emulator, http: requests.Session, bearer: Bearer) -> None:
    account = emu.account("initech")
    v1 = http.get(f"{emu.base_url}/api/auth/introspect", headers=bearer(account.token), timeout=5)
    v2 = http.get(
        f"{emu.base_url}/api/v2/auth/introspect", headers=bearer(account.token), timeout=5
    )
    assert v1.status_code == v2.status_code == 200
    assert v1.headers["Content-Type"].startswith("application/json")
    assert set(v1.json()) == {"UUID", "IssuedAt", "Features"}
    assert set(v2.json()) == {"uuid", "issued_at", "features", "account_uuid"}
    assert v1.json()["Features"] == v2.json()["features"] == ["signinattempts", "auditevents"]
    assert v2.json()["account_uuid"] == account.account_uuid
    assert v1.json()["UUID"] == v2.json()["uuid"]
    assert v2.json()["issued_at"].endswith("Z")
    other = http.get(
        f"{emu.base_url}/api/v2/auth/introspect",
        headers=bearer(emu.account("acme").token),
        timeout=5,
    ).json()
    assert other["uuid"] != v2.json()["uuid"]


@pytest.mark.parametrize("path", DATA_PATHS)
def test_every_data_route_answers_an_envelope(
    emu: Emulator, http: requests.Session, bearer: Bearer, path: str
) -> None:
    response = http.post(
        emu.base_url + path,
        json={"start_time": "2020-01-01T00:00:00Z"},
        headers=bearer(emu.account("acme").token),
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["cursor", "has_more", "items"]
    assert len(body["items"]) == 100  # the default limit
    assert body["has_more"] is True
    assert isinstance(body["cursor"], str)
    assert len(body["cursor"]) < 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/v2/signinattempts"),
        ("POST", "/api/v2/auth/introspect"),
        ("POST", "/api/v3/auditevents"),
        ("POST", "/api/v2/signinattempts/"),
        ("GET", "/api/v1/auth/introspect"),
        ("DELETE", "/api/v1/itemusages"),
        ("POST", "/api/v2/logins"),
        ("OPTIONS", "/api/v2/signinattempts"),
        ("PUT", "/api/v2/auditevents"),
    ],
)
def test_anything_else_is_a_plain_text_404(
    emu: Emulator, http: requests.Session, bearer: Bearer, method: str, path: str
) -> None:
    response = http.request(
        method, emu.base_url + path, headers=bearer(emu.account("acme").token), json={}, timeout=5
    )
    assert response.status_code == 404
    assert response.text == "404 page not found\n"
    assert response.headers["Content-Type"].startswith("text/plain")


def test_head_is_a_404_without_a_body(emu: Emulator, http: requests.Session) -> None:
    response = http.head(f"{emu.base_url}/api/v2/auth/introspect", timeout=5)
    assert response.status_code == 404
    assert response.content == b""
    assert http.get(f"{emu.base_url}/nothing", timeout=5).text == "404 page not found\n"


def _post(
    emu: Emulator, http: requests.Session, path: str, headers: dict[str, str]
) -> requests.Response:
    return http.post(emu.base_url + path, json={}, headers=headers, timeout=5)


def test_missing_or_bad_tokens_get_401(
    emu: Emulator, http: requests.Session, bearer: Bearer
) -> None:
    token = emu.account("acme").token
    header, payload, signature = token.split(".")
    forged_signature = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    cases = {
        "missing": {},
        "empty": {"Authorization": "Bearer "},
        "not bearer": {"Authorization": f"Basic {token}"},
        "garbled": {"Authorization": "Bearer not-a-token"},
        "two parts": {"Authorization": f"Bearer {header}.{payload}"},
        "bad signature": {"Authorization": f"Bearer {header}.{payload}.{forged_signature}"},
        "other seed": bearer(Emulator(seed=99, events=0).mint_token("acme")),
    }
    for name, headers in cases.items():
        for path in ("/api/v2/signinattempts", "/api/v1/auditevents"):
            response = _post(emu, http, path, headers)
            assert response.status_code == 401, name
            assert response.json() == {"Error": {"Message": "Unauthorized"}}, name
        assert (
            http.get(
                f"{emu.base_url}/api/v2/auth/introspect", headers=headers, timeout=5
            ).status_code
            == 401
        )


def test_a_token_without_the_feature_gets_401(
    emu: Emulator, http: requests.Session, bearer: Bearer
) -> None:
    initech = bearer(emu.account("initech").token)
    assert _post(emu, http, "/api/v2/itemusages", initech).status_code == 401
    assert _post(emu, http, "/api/v1/itemusages", initech).status_code == 401
    assert _post(emu, http, "/api/v2/signinattempts", initech).status_code == 200
    only_items = bearer(emu.mint_token("acme", features=["itemusages"]))
    assert _post(emu, http, "/api/v2/itemusages", only_items).status_code == 200
    assert _post(emu, http, "/api/v2/auditevents", only_items).status_code == 401
    # The account has the data; a token that grants the feature reads it.
    granted = bearer(emu.mint_token("initech", features=["itemusages"]))
    assert _post(emu, http, "/api/v2/itemusages", granted).status_code == 200


def test_an_expired_token_gets_401(emu: Emulator, http: requests.Session, bearer: Bearer) -> None:
    expires = emu.now.timestamp() + 3600
    token = bearer(emu.mint_token("acme", exp=expires))
    assert _post(emu, http, "/api/v2/signinattempts", token).status_code == 200
    emu.advance_time(3601)
    assert _post(emu, http, "/api/v2/signinattempts", token).status_code == 401
    assert (
        http.get(f"{emu.base_url}/api/auth/introspect", headers=token, timeout=5).status_code == 401
    )
    assert (
        _post(emu, http, "/api/v2/signinattempts", bearer(emu.account("acme").token)).status_code
        == 200
    )


def test_a_token_for_an_account_the_emulator_does_not_serve_gets_401(
    http: requests.Session, bearer: Bearer
) -> None:
    with (
        Emulator(seed=7, events=5, accounts=[AccountSpec("solo")]) as solo,
        Emulator(seed=7, events=5) as full,
    ):
        stranger = full.account("acme").token  # same signing key (same seed), unknown account
        response = _post(solo, http, "/api/v2/signinattempts", bearer(stranger))
        assert response.status_code == 401
        assert (
            _post(
                solo, http, "/api/v2/signinattempts", bearer(solo.account("solo").token)
            ).status_code
            == 200
        )


def test_a_stopped_emulator_answers_nobody(http: requests.Session) -> None:
    emu = Emulator(seed=1, events=5).start()
    url = f"{emu.base_url}/api/v2/auth/introspect"
    headers = {"Authorization": f"Bearer {emu.account('acme').token}"}
    assert http.get(url, headers=headers, timeout=5).status_code == 200  # keeps the connection
    emu.stop()
    with pytest.raises(requests.ConnectionError):
        http.get(url, headers=headers, timeout=5)
