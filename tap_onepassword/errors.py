"""The failures the tap reports to its user, each as one line that names a fix.

Every message here is written for the person running the tap: it says what is wrong and what to
do, and it never carries a token (messages name accounts, never their credentials).
"""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError


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
    """The API refused a cursor (4xx on a `{"cursor": ...}` body).

    Kept apart from other client errors because the tap recovers from it once, by a reset
    request from its last emitted timestamp; the SDK's `FatalAPIError` carries no response, so
    a dedicated type is how the caller tells the cases apart.
    """


class ApiResponseError(TapOnePasswordError, FatalAPIError):
    """The API answered something the tap cannot use and retrying will not help."""
