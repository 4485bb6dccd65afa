"""One HTTP session (connection pool) per account, open only while the account is being read.

A session keeps its connection to the account's host between requests. Kept to the end of the
run, a thousand accounts' sessions kept a thousand connections (and file descriptors) open, so
a session is held by whoever pages the account (`hold`) and closed when the last holder is done
(`release`). What requests would read from the environment on every request (proxy variables
and NO_PROXY, REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE; about 0.6 ms of CPU each time) is read once
per session. Thread-safe.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from tap_onepassword.settings import Account


class AccountSessions:
    """The sessions of the accounts being read, and how each verifies TLS."""

    def __init__(self, ca_bundle: str | None) -> None:
        """Start with no session.

        Args:
            ca_bundle: The `ca_bundle` setting (None: the environment's or the system's CAs).

        """
        self._ca_bundle = ca_bundle
        self.verify: dict[str, str | bool] = {}
        """Per account, what to give each request as `verify`: never False."""
        self._sessions: dict[str, requests.Session] = {}
        self._holders: dict[str, int] = {}
        self._lock = threading.Lock()

    def session_for(self, account: Account) -> requests.Session:
        """Return the account's session, made now if it has none.

        Args:
            account: The account.

        Returns:
            Its session, verifying TLS with the system CAs or `ca_bundle` (never off).

        """
        with self._lock:
            session = self._sessions.get(account.name)
            if session is None:
                session = requests.Session()
                # Not taken from the environment: a ~/.netrc entry, which would replace the
                # bearer token with Basic auth.
                found = session.merge_environment_settings(
                    account.base_url, proxies={}, stream=None, verify=True, cert=None
                )
                session.trust_env = False
                session.proxies = found["proxies"]
                session.verify = self._ca_bundle or True
                # Given with each request: ca_bundle, else the environment's bundle, else the
                # system's. Verification is never off.
                self.verify[account.name] = self._ca_bundle or found["verify"] or True
                self._sessions[account.name] = session
            return session

    def hold(self, account: Account) -> None:
        """Say that requests of `account` will follow (a partition starts paging)."""
        with self._lock:
            self._holders[account.name] = self._holders.get(account.name, 0) + 1

    def release(self, account: Account) -> None:
        """One holder of `account`'s session is done; the last closes it and its connection."""
        with self._lock:
            holders = self._holders.get(account.name, 0) - 1
            if holders > 0:
                self._holders[account.name] = holders
                return
            self._holders.pop(account.name, None)
            session = self._sessions.pop(account.name, None)
            self.verify.pop(account.name, None)
        if session is not None:
            session.close()
