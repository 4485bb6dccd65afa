"""JWT-shaped Events API bearer tokens.

Real tokens are ES256 JWS whose claims clients read without verifying (the server verifies).
The emulator mints tokens of the same shape (three base64url parts, header ``alg: ES256``) and
signs them with a key derived from the seed, so a token stays valid across restarts with the
same seed while cursors (signed with a per-process secret) do not: exactly the situation a tap
meets after the real service rotates its cursor keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

AUDIENCE_CLAIM = "aud"
FEATURES_CLAIM = "1password.com/fts"
ACCOUNT_CLAIM = "1password.com/auuid"


class TokenError(Exception):
    """The bearer token is missing, garbled, unknown (bad signature) or expired."""


@dataclass(frozen=True)
class TokenClaims:
    """The claims the emulator reads back from a token it minted."""

    account_uuid: str
    features: tuple[str, ...]
    issued_at: int
    jti: str
    expires_at: int | None
    audience: tuple[str, ...]

    @property
    def integration_uuid(self) -> str:
        """UUID of the Events Reporting integration the token belongs to (stable per ``jti``)."""
        digest = hashlib.sha256(b"integration:" + self.jti.encode()).digest()
        return base64.b32encode(digest[:16]).decode()[:26]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenAuthority:
    """Mints and verifies the emulator's tokens with one signing key."""

    def __init__(self, key: bytes) -> None:
        """Use ``key`` for signatures; the header ``kid`` is derived from it."""
        self._key = key
        kid = base64.b32encode(hashlib.sha256(b"kid:" + key).digest()).decode()[:26].lower()
        self._header = _b64url(
            json.dumps({"alg": "ES256", "kid": kid, "typ": "JWT"}, separators=(",", ":")).encode()
        )

    def mint(  # noqa: PLR0913 - each claim is a separate, named choice of the caller
        self,
        *,
        account_uuid: str,
        features: list[str] | tuple[str, ...],
        issued_at: int,
        jti: str,
        audience: list[str] | tuple[str, ...] | None,
        expires_at: int | None = None,
        claims: Mapping[str, object] | None = None,
        header: Mapping[str, object] | None = None,
    ) -> str:
        """Return a signed token carrying these claims (``exp`` only when given).

        For tokens a client must refuse: ``audience=None`` leaves ``aud`` out, ``claims`` adds
        or overrides claims (any JSON value, e.g. a string ``aud``), and ``header`` replaces the
        header. Such tokens are signed all the same, but only a default header verifies.
        """
        body: dict[str, object] = {
            FEATURES_CLAIM: list(features),
            ACCOUNT_CLAIM: account_uuid,
            "iat": issued_at,
            "jti": jti,
        }
        if audience is not None:
            body = {AUDIENCE_CLAIM: list(audience), **body}
        if expires_at is not None:
            body["exp"] = expires_at
        body.update(claims or {})
        encoded_header = self._header
        if header is not None:
            encoded_header = _b64url(json.dumps(dict(header), separators=(",", ":")).encode())
        payload = _b64url(json.dumps(body, separators=(",", ":")).encode())
        signing_input = f"{encoded_header}.{payload}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha512).digest()
        return f"{signing_input}.{_b64url(signature)}"

    def verify(self, token: str, now_seconds: float) -> TokenClaims:
        """Check the signature and expiry of ``token`` and return its claims.

        Raises:
            TokenError: for anything but a valid, unexpired token minted with this key.

        """
        parts = token.split(".")
        if len(parts) != 3:  # noqa: PLR2004 - header.payload.signature
            msg = "not a JWT"
            raise TokenError(msg)
        header, payload, signature = parts
        try:
            expected = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha512).digest()
            if header != self._header or not hmac.compare_digest(expected, _unb64url(signature)):
                msg = "unknown token"
                raise TokenError(msg)
            claims = json.loads(_unb64url(payload))
        except (ValueError, UnicodeDecodeError) as exc:
            msg = "garbled token"
            raise TokenError(msg) from exc
        try:
            expires_at = claims.get("exp")
            if expires_at is not None and now_seconds >= expires_at:
                msg = "expired token"
                raise TokenError(msg)
            return TokenClaims(
                account_uuid=str(claims[ACCOUNT_CLAIM]),
                features=tuple(claims[FEATURES_CLAIM]),
                issued_at=int(claims["iat"]),
                jti=str(claims["jti"]),
                expires_at=expires_at,
                audience=tuple(claims[AUDIENCE_CLAIM]),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            msg = "garbled token"
            raise TokenError(msg) from exc
