"""The one way tests make Events API tokens: the emulator's minter, with a key of their own.

The tap reads a token's claims without verifying it, so tests that need no emulator (unit
tests, the scripted API of the reliability tests) still mint real-shaped, signed tokens here,
including the odd ones a client must refuse: no ``aud``, an empty or non-list ``aud``, extra or
overridden claims, a different header.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from onepassword_emulator.credentials import TokenAuthority
from tap_onepassword.streams import EVENT_FEATURES

if TYPE_CHECKING:
    from collections.abc import Mapping

AUTHORITY = TokenAuthority(b"tap-onepassword tests")
"""Signs every test token; no emulator uses this key, so none of them opens an emulator."""
ACCOUNT_UUID = "RELIABILITYACCOUNTUUID0001"
DEFAULT_AUDIENCE = ("events.1password.eu",)


def mint_token(  # noqa: PLR0913 - each claim is a separate, named choice of the caller
    aud: list[Any] | tuple[Any, ...] | str | None = DEFAULT_AUDIENCE,
    *,
    features: list[str] | None = None,
    auuid: str = ACCOUNT_UUID,
    exp: int | None = None,
    omit_aud: bool = False,
    claims: Mapping[str, Any] | None = None,
    header: Mapping[str, Any] | None = None,
) -> str:
    """A JWT-shaped Events token, minted by the emulator's ``TokenAuthority``.

    Args:
        aud: the ``aud`` claim: a list as given, a string wrapped in a list, ``None`` left out.
        features: the ``1password.com/fts`` claim (default: every event stream's feature).
        auuid: the account UUID claim.
        exp: the expiry in Unix seconds (default: none).
        omit_aud: leave ``aud`` out whatever ``aud`` says.
        claims: claims to add or override, any JSON value (e.g. a string ``aud``).
        header: a header to use instead of the key's.

    Every token gets a random ``jti``, hence its own signature: two tokens never share a secret
    segment, so a leak of either is findable in output.

    """
    audience = None if omit_aud or aud is None else [aud] if isinstance(aud, str) else list(aud)
    return AUTHORITY.mint(
        account_uuid=auuid,
        features=list(EVENT_FEATURES.values()) if features is None else features,
        issued_at=int(time.time()) - 60,
        jti=uuid.uuid4().hex,
        audience=audience,
        expires_at=exp,
        claims=claims,
        header=header,
    )


def make_token(
    claims: Mapping[str, Any] | None = None, *, aud: list[Any] | str | None = "events.1password.eu"
) -> str:
    """``mint_token`` with the claims first and one feature (``signinattempts``): the older
    spelling, kept for the tests that use it."""
    return mint_token(aud, features=["signinattempts"], claims=claims)
