"""Talking to the Events API: one client per run, shared by every stream and read-ahead worker.

The client owns what a request needs besides its body: the account's HTTP session, its token's
request budget, retries (with the API's `Retry-After`), reading and decoding the body, and the
error text a user reads. It knows nothing of Singer streams or state, and it is thread-safe, so
read-ahead's workers page through it at the same time as the SDK side. The retry policy lives
here and nowhere else.
"""

from __future__ import annotations

import email.utils
import json
import math
import threading
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import backoff
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_onepassword.accountmetrics import RequestTally, log_request_duration
from tap_onepassword.deadline import response_deadline
from tap_onepassword.errors import (
    AccountUnauthorizedError,
    ApiResponseError,
    CursorRejectedError,
    describe_failure,
    redact_secrets,
)
from tap_onepassword.pages import continues_listing, decode_object
from tap_onepassword.progress import clock_in, name_some
from tap_onepassword.ratebudget import RateBudget, wait_in_steps
from tap_onepassword.sessions import AccountSessions
from tap_onepassword.slowanswers import SlowAnswers

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Generator

    from backoff.types import Details

    from tap_onepassword.pages import EventsCursorPaginator, PageT, RequestBody
    from tap_onepassword.settings import Account, Settings

T = TypeVar("T")

RETRIABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
"""What is worth another try: throttling, 5xx, resets, timeouts, broken bodies (a truncated or
non-JSON body is decoded into a `RetriableAPIError`)."""

RETRIABLE_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS})
"""Client errors answered by another try (besides every 5xx)."""

MAX_RETRY_AFTER = 3600.0
"""The longest `Retry-After` honoured: the API's longest rate window (one hour)."""


def introspection_path(api_version: str) -> str:
    """Return the introspection route: `/api/v2/auth/introspect`, or the deprecated v1 one.

    Args:
        api_version: `v1` or `v2`.

    Returns:
        The path.

    """
    return "/api/auth/introspect" if api_version == "v1" else "/api/v2/auth/introspect"


class EventsApiClient:
    """Budgeted, retried requests to the Events API of the configured accounts."""

    RETRY_BASE_SECONDS: ClassVar[float] = 1.0
    """First wait after a failed request; it doubles on each further failure."""

    RETRY_MAX_SECONDS: ClassVar[float] = 60.0
    """Longest wait without Retry-After: the API's per-minute rate window."""

    MAX_TRIES: ClassVar[int] = 10
    """Attempts per request before giving up (about 4 minutes of waiting at most)."""

    def __init__(
        self,
        settings: Settings,
        *,
        user_agent: str,
        logger: logging.Logger,
        tally: RequestTally | None = None,
    ) -> None:
        """Prepare a client; sessions and budgets are made on first use.

        Args:
            settings: The run's checked settings.
            user_agent: The `User-Agent` header.
            logger: Where retries and long waits are logged.
            tally: Counts the requests sent, per stream and account.

        """
        self.settings = settings
        self.user_agent = user_agent
        self.logger = logger
        self.tally = tally or RequestTally()
        self.slow_answers = SlowAnswers(logger, request_timeout=settings.request_timeout)
        self._accounts = AccountSessions(settings.ca_bundle)
        self._verify = self._accounts.verify
        self._timing = threading.local()
        self._budgets: dict[str, RateBudget] = {}
        self._budgets_lock = threading.Lock()

    def budget_for(self, account: Account) -> RateBudget:
        """Return the request budget of the account's token, shared by all accounts using it.

        Args:
            account: The account.

        Returns:
            Its token's budget.

        """
        with self._budgets_lock:
            budget = self._budgets.get(account.token_id)
            if budget is None:
                sharing = [a.name for a in self.settings.accounts if a.token_id == account.token_id]
                budget = RateBudget(
                    self.settings.max_requests_per_minute,
                    self.settings.max_requests_per_hour,
                    on_long_wait=self._budget_notice(sharing),
                )
                self._budgets[account.token_id] = budget
            return budget

    def _budget_notice(self, accounts: list[str]) -> Callable[[str, float], None]:
        """Say, of a budget's long waits, what they are for, whose token, and until when."""
        whose = f"account{'s' if len(accounts) > 1 else ''} {name_some(accounts)}"

        def notice(reason: str, seconds: float) -> None:
            self.logger.info(
                "waiting for the request budget of the token of %s (%s): %.0f s, until %s UTC",
                whose,
                reason,
                seconds,
                clock_in(seconds),
            )

        return notice

    def budget_waits(self) -> float:
        """Seconds callers waited for request budgets so far, summed over threads."""
        with self._budgets_lock:
            return sum(budget.waited for budget in self._budgets.values())

    def session_for(self, account: Account) -> requests.Session:
        """Return the account's HTTP session (see sessions.py)."""
        return self._accounts.session_for(account)

    def follow_cursor(  # noqa: PLR0913 - one paging, fully described
        self,
        account: Account,
        method: str,
        path: str,
        first_body: RequestBody,
        paginator: EventsCursorPaginator[PageT],
        *,
        label: str,
    ) -> Generator[PageT, None, None]:
        """Page from `first_body` while answers say there is more, holding the account's session."""
        self._accounts.hold(account)
        try:
            while not paginator.finished:
                body = paginator.current_value or first_body
                page = self.fetch(account, method, path, body, paginator.page_of, label=label)
                yield page
                paginator.advance_past(page)
        finally:
            self._accounts.release(account)

    def last_round_trip(self) -> float:
        """Seconds this thread's last request waited for its answer's headers (0: none yet)."""
        return float(getattr(self._timing, "round_trip", 0.0))

    def introspect(self, account: Account) -> dict[str, Any]:
        """Ask what the account's token may read.

        Args:
            account: The account.

        Returns:
            The API's answer, as sent.

        """
        self._accounts.hold(account)
        try:
            return self.fetch(
                account,
                "GET",
                introspection_path(self.settings.api_version),
                None,
                lambda response: decode_object(response.content),
                label="introspection",
            )
        finally:
            self._accounts.release(account)

    def fetch(  # noqa: PLR0913 - one request, fully described
        self,
        account: Account,
        method: str,
        path: str,
        body: RequestBody | None,
        decode: Callable[[requests.Response], T],
        *,
        label: str,
    ) -> T:
        """Send one request within the token's budget, retrying what may pass, and decode it.

        Decoding happens inside the retry, so a body cut short is fetched again.

        Args:
            account: Whose URL, token and budget to use.
            method: `GET` or `POST`.
            path: The endpoint's path.
            body: The JSON body, if any.
            decode: Parses a 200 response.
            label: What is being read (a stream name), for messages.

        Returns:
            The decoded response.

        Raises:
            ApiResponseError: Retries ran out, or the API answered something unusable.

        """
        # backoff counts the tries; the wait between them is the handler's, which tells it as
        # it goes (a wait of a minute is not a minute of silence).
        attempt = backoff.on_exception(
            backoff.constant,
            RETRIABLE_ERRORS,
            interval=0,
            max_tries=self.MAX_TRIES,
            jitter=None,  # Retry-After is honoured exactly and waits stay predictable
            on_backoff=lambda details: self._wait_to_retry(details, label, method, path),
            logger=None,
        )(self._attempt)
        try:
            return attempt(account, method, path, body, decode, label=label)
        except RETRIABLE_ERRORS as exc:
            msg = (
                f"{label}, account '{account.name}': gave up after {self.MAX_TRIES} "
                f"attempts; last error: {describe_failure(exc)}"
            )
            raise ApiResponseError(msg) from None
        except (AccountUnauthorizedError, CursorRejectedError, ApiResponseError):
            raise
        except FatalAPIError as exc:
            msg = f"{label}, account '{account.name}': {exc}"
            raise ApiResponseError(msg) from None

    def _attempt(  # noqa: PLR0913 - fetch's request, as backoff passes it on
        self,
        account: Account,
        method: str,
        path: str,
        body: RequestBody | None,
        decode: Callable[[requests.Response], T],
        *,
        label: str,
    ) -> T:
        budget = self.budget_for(account)
        budget.acquire()
        self.tally.count(label, account.name)
        # A fresh dict per request; the token goes in the header of this one request and is
        # never put in a context, state or a log line.
        headers = {
            "Accept": "application/json",
            "User-Agent": self.user_agent,
            "Authorization": f"Bearer {account.token}",
        }
        timeout = self.settings.request_timeout
        try:
            out = self.slow_answers.out(f"{label}, account '{account.name}': {method} {path}")
            with out, response_deadline(timeout):  # the whole answer, not each wait for bytes
                response = self.session_for(account).request(
                    method,
                    account.base_url + path,
                    json=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    verify=self._verify[account.name],
                    stream=True,  # the body is read by read_whole_body
                )
                self._timing.round_trip = response.elapsed.total_seconds()
                read_whole_body(response)
        except requests.exceptions.SSLError as exc:
            msg = (
                f"account '{account.name}': TLS verification failed for {account.base_url} "
                f"({describe_failure(exc)}). If a proxy intercepts TLS, set ca_bundle to its CA "
                "certificates (verification cannot be turned off)."
            )
            raise ApiResponseError(msg) from None
        log_request_duration(label, account.name, path, response)
        if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            # Everyone on this token waits, not only this stream: the server counts them all.
            pause = retry_after_seconds(response)
            budget.pause(1.0 if pause is None else pause)
        budget.heed_rate_limit_headers(response)  # v3 says when the token's window is spent
        if response.status_code in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
            raise AccountUnauthorizedError(
                account.name, account.base_url + path, response.status_code
            )
        check_status(response)
        return decode(response)

    def retry_wait(self, exception: Exception, attempt: int) -> float:
        """How long to wait before attempt `attempt + 1`.

        A 429 with `Retry-After` waits exactly that long; anything else waits 1 s, 2 s, 4 s,
        ... up to 60 s, the length of the API's per-minute window.

        Args:
            exception: Why the last attempt failed.
            attempt: How many attempts failed so far.

        Returns:
            Seconds.

        """
        expo = min(self.RETRY_MAX_SECONDS, self.RETRY_BASE_SECONDS * 2.0 ** (attempt - 1))
        response = getattr(exception, "response", None)
        if (
            isinstance(response, requests.Response)
            and response.status_code == HTTPStatus.TOO_MANY_REQUESTS
        ):
            retry_after = retry_after_seconds(response)
            if retry_after is not None:
                return retry_after
        return expo

    def _wait_to_retry(self, details: Details, label: str, method: str, path: str) -> None:
        """Say why and until when, then wait; a long wait is told again every few seconds."""
        account = details["args"][0]
        exception = details.get("exception")
        wait = self.retry_wait(exception, details["tries"]) if exception else 0.0
        self.logger.warning(
            "%s, account '%s': %s %s failed (%s); retrying in %.1f s, at %s UTC (attempt %d of %d)",
            label,
            account.name,
            method,
            path,
            describe_failure(exception),
            wait,
            clock_in(wait),
            details["tries"] + 1,
            self.MAX_TRIES,
        )

        def tell(left: float) -> None:
            self.logger.info(
                "%s, account '%s': waiting to retry %s %s: %.0f s, until %s UTC",
                label,
                account.name,
                method,
                path,
                left,
                clock_in(left),
            )

        wait_in_steps(wait, tell)


def check_status(response: requests.Response) -> None:
    """Raise for any answer but 200: retriable, a rejected cursor, or fatal.

    Args:
        response: The response.

    Raises:
        RetriableAPIError: 429 or 5xx.
        CursorRejectedError: A 4xx to a `{"cursor": ...}` body or a v3 page token.
        FatalAPIError: Any other answer but 200.

    """
    status = response.status_code
    if status in RETRIABLE_STATUSES or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        raise RetriableAPIError(response_error_message(response), response)
    if status >= HTTPStatus.BAD_REQUEST:
        refused = status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}
        if continues_listing(response.request) and not refused:
            raise CursorRejectedError(response_error_message(response))
        raise FatalAPIError(response_error_message(response))
    if status != HTTPStatus.OK:
        msg = f"unexpected {response_error_message(response)}"
        raise FatalAPIError(msg)


def response_error_message(response: requests.Response) -> str:
    """Say what the API answered, in one line without secrets.

    Both documented error bodies (`{"Error":{"Message"}}` and `{"status","message"}`) and plain
    text (`404 page not found`) are read; long bodies are cut. The text is the server's:
    anything token-shaped in it (a gateway echoing the request) is cut out.

    Args:
        response: A response other than 200.

    Returns:
        `<status> <reason> from <path>: <detail>`.

    """
    detail = response.text[:2000]
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("Error")
        if isinstance(error, dict) and isinstance(error.get("Message"), str):
            detail = error["Message"][:2000]
        elif isinstance(body.get("message"), str):
            detail = body["message"][:2000]
    detail = redact_secrets(detail)[:300].strip()
    path = urlsplit(response.url).path
    return f"{response.status_code} {response.reason} from {path}: {detail}".rstrip(": ")


def retry_after_seconds(response: requests.Response) -> float | None:
    """Read `Retry-After` as seconds (a number or an HTTP date); None when absent or unreadable.

    Args:
        response: A 429 response.

    Returns:
        Seconds to wait, from 0 to `MAX_RETRY_AFTER`.

    """
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if not math.isfinite(seconds):
        return None
    # A server (or a proxy in front of it) may ask for anything; no wait the API can mean is
    # longer than its hour window, and an unbounded one would stall the run for good.
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def read_whole_body(response: requests.Response) -> None:
    """Read a streamed response's body in one read, and keep it as its `content`.

    requests reads a body 10 KiB at a time, each read a system call that lets another thread
    take the interpreter lock and then waits to get it back: with read-ahead's workers, dozens
    of hand-overs per page. Read at once (urllib3 reads what the headers announce), the errors
    are those requests raises (`iter_content` translates them) and the connection goes back to
    the pool, as without streaming.

    Args:
        response: A response asked for with `stream=True`, its body not read yet.

    """
    response._content = b"".join(response.iter_content(chunk_size=None))  # noqa: SLF001
