"""Events API tokens: read their claims, and find the host an account's events live on.

Events tokens are JWTs. Like the official 1Password clients, the tap reads the claims without
verifying the signature (the server does that) and only for two things: the host in `aud[0]`
(which region the account is in) and the expiry. Every message here names the account, never
the token.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from tap_onepassword.errors import ConfigError

EVENTS_HOSTS = frozenset(
    {
        "events.1password.com",
        "events.ent.1password.com",
        "events.1password.ca",
        "events.1password.eu",
    }
)
"""The four 1Password Events API hosts, one per sign-in domain (1password.com, ent, .ca, .eu)."""

EXPIRY_WARNING = timedelta(days=14)
"""A token expiring within this long gets a warning on every run (and a line in `--test`)."""

_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


@dataclass(frozen=True)
class TokenClaims:
    """The claims of an Events token that the tap uses."""

    audience: tuple[str, ...]
    """`aud`: its first element is the account's Events API host (e.g. events.1password.eu)."""

    features: tuple[str, ...]
    """`1password.com/fts`: the event features the token may read."""

    expires_at: int | None
    """`exp` in Unix seconds, present only when the token was issued with an expiry."""


def _decode_segment(segment: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    decoded = json.loads(raw)
    if not isinstance(decoded, dict):
        raise TypeError
    return decoded


def read_claims(token: str, account_name: str) -> TokenClaims:
    """Decode a token's claims, or say plainly that it is not an Events token.

    Args:
        token: The bearer token as configured (surrounding whitespace already removed).
        account_name: The account it belongs to, for the message.

    Returns:
        The claims the tap relies on.

    Raises:
        ConfigError: The token is not a JWT, or has expired.

    """
    problem = (
        f"account '{account_name}': the token is not a 1Password Events API token "
        "(expected a JWT: three base64url parts separated by dots, as shown once when the "
        "token was issued). Copy the whole token again."
    )
    if not _JWT_SHAPE.fullmatch(token):
        raise ConfigError(problem)
    header, payload, _ = token.split(".")
    try:
        _decode_segment(header)
        claims = _decode_segment(payload)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ConfigError(problem) from None

    audience = claims.get("aud")
    if isinstance(audience, str):
        audience = [audience]
    if not isinstance(audience, list) or not all(isinstance(a, str) for a in audience):
        audience = []
    features = claims.get("1password.com/fts")
    if not isinstance(features, list):
        features = []
    expires_at = claims.get("exp")
    if not isinstance(expires_at, int) or isinstance(expires_at, bool):
        expires_at = None
    if expires_at is not None and expires_at <= time.time():
        expired_on = datetime.fromtimestamp(expires_at, tz=timezone.utc).isoformat()
        msg = (
            f"account '{account_name}': the token expired on {expired_on}. Issue a new token "
            "in 1Password (Integrations > Events Reporting) and update the configuration."
        )
        raise ConfigError(msg)
    return TokenClaims(
        audience=tuple(audience),
        features=tuple(str(f) for f in features),
        expires_at=expires_at,
    )


def expiry_warning(
    account_name: str, expires_at: int | None, now: float | None = None
) -> str | None:
    """Say that a token expires soon, so a scheduled run does not stop by surprise one day.

    Args:
        account_name: The account, for the message.
        expires_at: The token's `exp` (Unix seconds), or None when it never expires.
        now: The current time (Unix seconds; default: now).

    Returns:
        One line naming the account and the moment, or None when the token has more than
        `EXPIRY_WARNING` left (or no expiry).

    """
    if expires_at is None:
        return None
    left = expires_at - (time.time() if now is None else now)
    if left > EXPIRY_WARNING.total_seconds():
        return None
    when = datetime.fromtimestamp(expires_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"account '{account_name}': the token expires on {when} (in {left / 86400:.1f} days); "
        "issue a new token in 1Password (Integrations > Events Reporting) and update the "
        "configuration before then."
    )


def events_base_url(claims: TokenClaims, account_name: str) -> str:
    """Derive the account's base URL from the token's `aud` host, as the official clients do.

    Args:
        claims: The token's claims.
        account_name: The account, for the message.

    Returns:
        `https://<aud[0]>` when that is one of the four Events hosts.

    Raises:
        ConfigError: `aud` names no Events host (legacy tokens, or tokens of other services).

    """
    host = claims.audience[0].strip().lower() if claims.audience else ""
    if host in EVENTS_HOSTS:
        return f"https://{host}"
    hosts = ", ".join(f"https://{h}" for h in sorted(EVENTS_HOSTS))
    problem = (
        f"the token names '{host}' as its Events API host, which is not a 1Password Events host"
        if host
        else "the token names no host (its 'aud' claim is missing or empty)"
    )
    msg = (
        f"account '{account_name}': {problem}; set base_url to the one for the account's region "
        f"({hosts})."
    )
    raise ConfigError(msg)


def is_loopback_host(host: str) -> bool:
    """Tell whether a host name or address is this machine (the only place plain HTTP may go).

    Args:
        host: A host name or IP literal, without brackets or port.

    Returns:
        True for `localhost`, 127.0.0.0/8 and ::1.

    """
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, where: str) -> str:
    """Accept `https://` URLs, and `http://` only to this machine (tests, the emulator).

    Tokens travel in a header on every request, so plain HTTP to any other host would send
    them in clear text.

    Args:
        url: The configured base URL.
        where: Which setting it came from, for the message (e.g. `accounts[2].base_url`).

    Returns:
        The URL without a trailing slash.

    Raises:
        ConfigError: The URL is not usable.

    """
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.strip().rstrip("/")
    if parts.scheme == "http" and host and is_loopback_host(host):
        return url.strip().rstrip("/")
    if parts.scheme == "http" and host:
        msg = (
            f"{where}: plain http:// is only allowed to this machine (localhost); use https:// "
            f"for '{host}' so the token is never sent in clear text."
        )
        raise ConfigError(msg)
    # The value is not echoed: a misplaced token would otherwise be printed.
    msg = f"{where} is not an https:// URL; expected e.g. https://events.1password.com."
    raise ConfigError(msg)
