"""The minter makes the odd tokens a client must refuse, and the emulator refuses them too."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

from tests.support.tokens import make_token, mint_token

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from onepassword_emulator import Emulator

    Bearer = Callable[[str], dict[str, str]]


def _decoded(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _parts(token: str) -> tuple[dict, dict]:
    """The header and the claims."""
    header, claims, _ = token.split(".")
    return _decoded(header), _decoded(claims)


def _introspect(emu: Emulator, http: requests.Session, headers: dict[str, str]) -> int:
    url = f"{emu.base_url}/api/v2/auth/introspect"
    return http.get(url, headers=headers, timeout=5).status_code


def test_a_token_without_aud_is_refused_not_a_crash(
    emu: Emulator, http: requests.Session, bearer: Bearer
) -> None:
    token = emu.mint_token("acme", omit_aud=True)
    assert "aud" not in _parts(token)[1]
    assert _introspect(emu, http, bearer(token)) == 401
    assert _introspect(emu, http, bearer(emu.mint_token("acme"))) == 200


def test_claims_and_header_can_be_anything(
    emu: Emulator, http: requests.Session, bearer: Bearer
) -> None:
    odd = emu.mint_token("acme", claims={"aud": "events.1password.ca", "1password.com/fts": 7})
    assert _parts(odd)[1]["aud"] == "events.1password.ca"
    assert _introspect(emu, http, bearer(odd)) == 401
    unsigned = emu.mint_token("acme", header={"alg": "none"})
    assert _parts(unsigned)[0] == {"alg": "none"}
    assert _introspect(emu, http, bearer(unsigned)) == 401


def test_the_tests_minter_is_the_emulators() -> None:
    header, claims = _parts(mint_token(["127.0.0.1:9"], exp=4_102_444_800))
    assert header["alg"] == "ES256"
    assert claims["aud"] == ["127.0.0.1:9"]
    assert claims["exp"] == 4_102_444_800
    assert "aud" not in _parts(mint_token(None))[1]
    assert "aud" not in _parts(mint_token(["x"], omit_aud=True))[1]
    assert _parts(make_token({"jti": "j"}, aud="events.1password.com"))[1] | {"iat": 0} == {
        "aud": ["events.1password.com"],
        "1password.com/fts": ["signinattempts"],
        "1password.com/auuid": "RELIABILITYACCOUNTUUID0001",
        "iat": 0,
        "jti": "j",
    }
    assert mint_token() != mint_token()
