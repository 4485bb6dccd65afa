"""The failures the tap reports to its user, each as one line that names a fix.

Every message here is written for the person running the tap: it says what is wrong and what to
do, and it never carries a token (messages name accounts, never their credentials).
"""

from __future__ import annotations

import re

import requests
from singer_sdk.exceptions import FatalAPIError

_SECRET_SHAPES = re.compile(
    # A bearer credential as a header would carry it, whatever its form.
    r"(?i:bearer)\s+\S+"
    # A JWT (or the start of one, cut short): base64url JSON begins with "eyJ" ('{"').
    r"|eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}"
)


def redact_secrets(text: str) -> str:
    """Cut anything shaped like a token out of text the tap did not write itself.

    Error details quote the server's answer and exception text; a gateway that echoes the
    request (or a library that quotes a header) would otherwise put the bearer token into a
    log line or the final error. Events tokens are JWTs, so their shape is enough to find them.

    Args:
        text: A server's answer, an exception's text, or a message built from them.

    Returns:
        The text with every token-shaped part replaced by ``[redacted]``.

    """
    return _SECRET_SHAPES.sub("[redacted]", text)


class TapOnePasswordError(Exception):
    """A failure the command line reports as one line, without a traceback."""


class ConfigError(TapOnePasswordError):
    """The configuration cannot work; found before any request is sent."""


class AccountUnauthorizedError(TapOnePasswordError, FatalAPIError):
    """The Events API answered 401/403 for an account."""

    def __init__(self, account_name: str, url: str, status: int) -> None:
        """Name the account and the likely causes, which are the same for every 401.

        Args:
            account_name: The configured account name.
            url: The URL that was refused (base URL and path; URLs carry no secret here).
            status: The HTTP status code (401 or 403).

        """
        super().__init__(
            f"account '{account_name}': the Events API refused the token ({status}) at {url}. "
            "Likely causes: the token belongs to another region (check base_url, or the "
            "host in the token), it was revoked or has expired, or it lacks this endpoint's "
            "feature. Issue a new token in 1Password (Integrations > Events Reporting) and "
            "update the configuration."
        )


class CursorRejectedError(FatalAPIError):
    """The API refused a cursor (4xx on a `{"cursor": ...}` body) or a v3 page token.

    Kept apart from other client errors because the tap recovers from it, by asking again from
    its last emitted timestamp (v3: insertion time); the SDK's `FatalAPIError` carries no
    response, so a dedicated type is how the caller tells the cases apart.
    """


class ApiResponseError(TapOnePasswordError, FatalAPIError):
    """The API answered something the tap cannot use and retrying will not help."""


class CursorUnrecoverableError(ApiResponseError):
    """The API rejected a cursor again before a fallback to a timestamp got anywhere."""

    def __init__(self, stream_name: str, account_name: str, rejected: CursorRejectedError) -> None:
        """Say where it happened and what the next run does.

        Args:
            stream_name: The stream.
            account_name: The configured account name.
            rejected: The last rejection.

        """
        super().__init__(
            f"{stream_name}, account '{account_name}': the API rejected a cursor again before "
            f"the fallback to a timestamp got past its last event ({rejected}); the next run "
            "starts again from the last emitted event minus lookback_minutes"
        )


def describe_failure(exc: BaseException | None) -> str:
    """Describe a request failure briefly, without secrets.

    Args:
        exc: What the last attempt raised.

    Returns:
        A short description.

    """
    if exc is None:
        return "unknown error"
    if isinstance(exc, requests.exceptions.Timeout):
        return "no answer within request_timeout"
    broken = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)
    if isinstance(exc, broken):
        return "the answer was cut short"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection failed: {type(exc).__name__}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return redact_secrets(text)[:300]
