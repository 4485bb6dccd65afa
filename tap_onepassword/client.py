"""The base streams of the Events API: requests on one side, records and state on the other.

The network side (`OnePasswordStream.fetch`, `EventStream.request_pages`) turns a request body
into budgeted, retried requests and parsed pages (items, cursor, has_more), or for read-ahead
prepared pages (records shaped and encoded ahead, `EventStream.prepare_page`). It reads no stream
state and writes none, so it can run for several streams and accounts on background threads.
The SDK side (`EventStream.get_records`) consumes those pages in order: it emits a page's
records, and only then moves the partition's cursor forward and writes a STATE message.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from functools import cached_property
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import backoff
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams.rest import HTTPRequest, PageContext
from typing_extensions import override

from tap_onepassword.errors import (
    AccountUnauthorizedError,
    ApiResponseError,
    CursorRejectedError,
    redact_secrets,
)
from tap_onepassword.output import EncodedRecord, LeanRecordOutput, encode_record_into
from tap_onepassword.pages import (
    EventsCursorPaginator,
    HeldPage,
    Page,
    PageT,
    PreparedPage,
    RequestBody,
    decode_held_page,
    decode_page,
    rate_limit_pause,
    retry_after_seconds,
)
from tap_onepassword.progress import Progress
from tap_onepassword.settings import Account, Settings, retention_start
from tap_onepassword.timestamps import format_timestamp, normalise_timestamp, parse_timestamp

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator

    from backoff.types import Details
    from singer_sdk.helpers.types import Context

    from tap_onepassword.tap import TapOnePassword

T = TypeVar("T")

RETRIABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
"""What is worth another try: the SDK's own list (throttling, 5xx, resets, timeouts, broken
bodies); `decode_page` turns a truncated or non-JSON body into a `RetriableAPIError`."""


class OnePasswordStream(LeanRecordOutput, RESTStream[RequestBody | None]):
    """A stream read per configured account, through budgeted and retried requests."""

    RETRY_BASE_SECONDS: ClassVar[float] = 1.0
    """First wait after a failed request; it doubles on each further failure."""

    RETRY_MAX_SECONDS: ClassVar[float] = 60.0
    """Longest wait without Retry-After: the API's per-minute rate window."""

    MAX_TRIES: ClassVar[int] = 10
    """Attempts per request before giving up (about 4 minutes of waiting at most)."""

    def __init__(self, tap: TapOnePassword) -> None:
        """Bind the stream to the tap, which holds the settings, budgets and account access.

        Args:
            tap: The tap.

        """
        super().__init__(tap=tap)
        self.tap = tap
        self._sessions: dict[str, requests.Session] = {}
        self._verify: dict[str, str | bool] = {}
        self._sessions_lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        """The tap's checked settings."""
        return self.tap.settings

    @property
    @override
    def url_base(self) -> str:
        # Each account has its own host; see get_url.
        return ""

    def account_of(self, context: Context | None) -> Account:
        """Find the account a partition context names.

        Args:
            context: `{"account_name": ...}`.

        Returns:
            The configured account.

        """
        if not context:
            msg = f"{self.name} is read per account and needs a partition context"
            raise ValueError(msg)
        return self.settings.account(context["account_name"])

    @property
    @override
    def partitions(self) -> list[dict[str, Any]] | None:
        # One partition per configured account, in configuration order. The SDK's default
        # (partitions found in state) would drop new accounts and keep removed ones.
        return [{"account_name": account.name} for account in self.settings.accounts]

    @override
    def get_url(self, context: Context | None) -> str:
        return self.account_of(context).base_url + (self.path or "")

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        # A fresh dict per request: get_http_request adds the account's token to it.
        return {"Accept": "application/json", "User-Agent": self._user_agent}

    @cached_property
    def _user_agent(self) -> str:
        # The SDK reads the installed package's metadata for the version on every call.
        return f"tap-onepassword/{self.tap.plugin_version}"

    @override
    def get_http_request(self, *, page: PageContext[RequestBody | None]) -> HTTPRequest:
        request = super().get_http_request(page=page)
        # The token goes in the header of this one request, chosen by the partition's account;
        # it is never put in a context, state or a log line.
        token = self.account_of(page.stream_context).token
        request.headers["Authorization"] = f"Bearer {token}"
        return request

    def session_for(self, account: Account) -> requests.Session:
        """One HTTP session (connection pool) per account, safe to use from one thread each.

        Args:
            account: The account.

        Returns:
            Its session, verifying TLS with the system CAs or `ca_bundle` (never off).

        """
        with self._sessions_lock:
            session = self._sessions.get(account.name)
            if session is None:
                session = requests.Session()
                # What requests would read from the environment on every request (proxy
                # variables and NO_PROXY, REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE; about 0.6 ms of
                # CPU each time), read once for the account's host. Not taken from it: a
                # ~/.netrc entry, which would replace the bearer token with Basic auth.
                found = session.merge_environment_settings(
                    account.base_url, proxies={}, stream=None, verify=True, cert=None
                )
                session.trust_env = False
                session.proxies = found["proxies"]
                session.verify = self.settings.ca_bundle or True
                # Given with each request: ca_bundle, else the environment's bundle, else the
                # system's. Verification is never off.
                self._verify[account.name] = self.settings.ca_bundle or found["verify"] or True
                self._sessions[account.name] = session
            return session

    # Network side -----------------------------------------------------------------------

    def fetch(
        self,
        account: Account,
        request: HTTPRequest,
        decode: Callable[[requests.Response], T],
    ) -> T:
        """Send one request within the token's budget, retrying what may pass, and decode it.

        Decoding happens inside the retry, so a body cut short is fetched again.

        Args:
            account: Whose token and budget to use.
            request: The request (URL, method, headers, JSON body).
            decode: Parses a 200 response.

        Returns:
            The decoded response.

        Raises:
            ApiResponseError: Retries ran out, or the API answered something unusable.

        """
        attempt = backoff.on_exception(
            self.backoff_wait_generator,
            RETRIABLE_ERRORS,
            max_tries=self.backoff_max_tries,
            jitter=self.backoff_jitter,
            on_backoff=self.backoff_handler,
            logger=None,
        )(self._attempt)
        try:
            return attempt(account, request, decode)
        except RETRIABLE_ERRORS as exc:
            msg = (
                f"{self.name}, account '{account.name}': gave up after {self.MAX_TRIES} "
                f"attempts; last error: {_describe(exc)}"
            )
            raise ApiResponseError(msg) from None
        except (AccountUnauthorizedError, CursorRejectedError, ApiResponseError):
            raise
        except FatalAPIError as exc:
            msg = f"{self.name}, account '{account.name}': {exc}"
            raise ApiResponseError(msg) from None

    def _attempt(
        self,
        account: Account,
        request: HTTPRequest,
        decode: Callable[[requests.Response], T],
    ) -> T:
        self.tap.budget_for(account).acquire()
        try:
            response = self.session_for(account).request(
                request.method,
                request.url,
                json=request.data,
                headers=request.headers,
                timeout=self.settings.request_timeout,
                allow_redirects=False,
                verify=self._verify[account.name],
                stream=True,  # the body is read by read_whole_body
            )
            read_whole_body(response)
        except requests.exceptions.SSLError as exc:
            msg = (
                f"account '{account.name}': TLS verification failed for {account.base_url} "
                f"({_describe(exc)}). If a proxy intercepts TLS, set ca_bundle to its CA "
                "certificates (verification cannot be turned off)."
            )
            raise ApiResponseError(msg) from None
        if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            # Everyone on this token waits, not only this stream: the server counts them all.
            pause = retry_after_seconds(response)
            self.tap.budget_for(account).pause(1.0 if pause is None else pause)
        spent = rate_limit_pause(response)
        if spent is not None:
            # The server says the token's window is spent (v3's RateLimit-* headers): hold
            # every user of the token until it frees, rather than meet a 429.
            self.tap.budget_for(account).pause(spent)
        if response.status_code in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
            raise AccountUnauthorizedError(
                account.name, account.base_url + (self.path or ""), response.status_code
            )
        self.validate_response(response)
        return decode(response)

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status in self.extra_retry_statuses or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(self.response_error_message(response), response)
        if status >= HTTPStatus.BAD_REQUEST:
            body = response.request.body or b""
            sent_cursor = (body if isinstance(body, bytes) else body.encode()).startswith(
                b'{"cursor"'
            )
            if sent_cursor and status not in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
                raise CursorRejectedError(self.response_error_message(response))
            raise FatalAPIError(self.response_error_message(response))
        if status != HTTPStatus.OK:
            msg = f"unexpected {self.response_error_message(response)}"
            raise FatalAPIError(msg)

    @override
    def response_error_message(self, response: requests.Response) -> str:
        # Both documented error bodies ({"Error":{"Message"}} and {"status","message"}) and
        # plain text (404 page not found) are read; long bodies are cut. The text is the
        # server's: anything token-shaped in it (a gateway echoing the request) is cut out.
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

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        def waits() -> Generator[float, Any, None]:
            attempt = 0
            exception = yield 0.0  # primed by backoff before the first failure
            while True:
                attempt += 1
                exception = yield self.retry_wait(exception, attempt)

        return waits()

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

    @override
    def backoff_max_tries(self) -> int:
        return self.MAX_TRIES

    @override
    def backoff_jitter(self, value: float) -> float:
        # No jitter: Retry-After is honoured exactly and waits stay predictable.
        return value

    @override
    def backoff_handler(self, details: Details) -> None:
        account, request = details["args"][0], details["args"][1]
        self.logger.warning(
            "%s, account '%s': %s %s failed (%s); retrying in %.1f s (attempt %d of %d)",
            self.name,
            account.name,
            request.method,
            self.path,
            _describe(details.get("exception")),
            details.get("wait", 0.0),
            details["tries"] + 1,
            self.MAX_TRIES,
        )


def read_whole_body(response: requests.Response) -> None:
    """Read a streamed response's body in one read, and keep it as its `content`.

    requests reads a body 10 KiB at a time, each read a system call that lets another thread
    take the interpreter lock and then waits to get it back: with read-ahead's workers, some
    80 such hand-overs for a page of 1,000 events (a sync of 160,000 events made 130,000
    futex calls; 18,000 when read at once). Read at once (urllib3 reads what the headers
    announce), the errors are those requests raises (`iter_content` translates them) and the
    connection goes back to the pool, as without streaming.

    Args:
        response: A response asked for with `stream=True`, its body not read yet.

    """
    response._content = b"".join(response.iter_content(chunk_size=None))  # noqa: SLF001


def _describe(exc: BaseException | None) -> str:
    """Describe a request failure briefly, without secrets."""
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


class EventStream(OnePasswordStream):
    """One event endpoint (sign-in attempts, item usages, audit events) for every account."""

    feature: ClassVar[str]
    """The token feature and the endpoint's last path segment, e.g. `signinattempts`."""

    MAX_FALLBACKS: ClassVar[int] = 10
    """Rejected cursors answered by a fallback in one run, per stream and account."""

    http_method = "POST"
    primary_keys = ("account_name", "uuid")
    replication_key = "timestamp"

    # Records are decoded JSON (str, int, float, bool, None, lists, dicts): conforming them
    # could only drop unknown top-level fields (shape_record does that itself, naming them),
    # drop unknown nested keys (every nested object allows them), or coerce a value of a
    # boolean-only property (there is none). tests/perf checks both facts and that the output
    # equals the SDK's RECURSIVE level, so the per-record walk over the schema is skipped.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapOnePassword) -> None:
        """Create the stream.

        Args:
            tap: The tap.

        """
        super().__init__(tap)
        self._known_fields = frozenset(self.schema["properties"])
        self._reported_fields: set[str] = set()
        self._reported_lock = threading.Lock()
        self.finished: list[Progress] = []
        """Progress of each account read in this run, for the summary."""

    @property
    @override
    def is_sorted(self) -> bool:
        # The tap resumes by the API cursor, which follows ingestion order, so an interrupted
        # run resumes exactly; the SDK then keeps its bookmark in plain state (no
        # "progress markers" that are wiped on restart).
        return True

    @property
    @override
    def check_sorted(self) -> bool:
        # Timestamps do not increase monotonically (late events arrive with older ones).
        return False

    @property
    def path(self) -> str:  # type: ignore[override] # the SDK's is set once; this follows config
        """`/api/{v1|v2}/<feature>`, by the `api_version` setting."""
        return f"/api/{self.settings.api_version}/{self.feature}"

    @override
    def get_new_paginator(self) -> EventsCursorPaginator[Page]:
        return EventsCursorPaginator(decode_page)

    @override
    def prepare_request_payload(
        self, context: Context | None, next_page_token: RequestBody | None
    ) -> RequestBody | None:
        # The page token is the whole body: the first body chosen from state, then cursors.
        return next_page_token

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        return decode_page(response.content).items

    def request_pages(
        self, context: Context, first_body: RequestBody
    ) -> Generator[Page, None, None]:
        """Network side: the pages of one account, from `first_body` while `has_more`.

        Touches no state, so it may run ahead on another thread; the caller commits each page
        after emitting it.

        Args:
            context: The account's partition context.
            first_body: A reset body or `{"cursor": ...}`.

        Returns:
            Pages, in order.

        """
        return self._follow_cursor(context, first_body, self.get_new_paginator())

    def request_pages_ahead(
        self, context: Context, first_body: RequestBody, held: Callable[[], bool]
    ) -> Generator[Page | HeldPage | PreparedPage, None, None]:
        """Network side for read-ahead: `request_pages`, its pages made ready to wait.

        When records go out unchanged (`writes_records_unchanged`, asked on the main thread
        first), every page is prepared (`prepare_page`): the SDK side then only writes lines.
        Otherwise a page keeps its events as text when `held()` says, as it arrives, that it
        will wait.

        Args:
            context: The account's partition context.
            first_body: A reset body or `{"cursor": ...}`.
            held: Whether a page arriving now will wait before it is emitted.

        Returns:
            Pages, in order; `emit` writes of each what it writes of `request_pages`' page.

        """
        account_name = context["account_name"]

        def prepare(body: bytes) -> PreparedPage:
            return self.prepare_page(decode_page(body), account_name)

        def hold(body: bytes) -> Page | HeldPage:
            return decode_held_page(body) if held() else decode_page(body)

        decode: Callable[[bytes], Page | HeldPage | PreparedPage]
        decode = prepare if self.writes_records_unchanged else hold
        paginator: EventsCursorPaginator[Page | HeldPage | PreparedPage]
        paginator = EventsCursorPaginator(decode)
        return self._follow_cursor(context, first_body, paginator)

    def prepare_page(self, page: Page, account_name: str) -> PreparedPage:
        """Shape and encode a page's records ahead of their turn, as `emit` would write them.

        An event `emit` would fail on (`shape_record`) ends the page there: its error is kept,
        to be raised after the records before it are written, where `emit` raises it.

        Args:
            page: A parsed page.
            account_name: Its account.

        Returns:
            The prepared page.

        """
        timestamps: list[str] = []
        text = bytearray()
        ends: list[int] = []
        error: ApiResponseError | None = None
        try:
            for timestamp, record in self.accepted_records(page, account_name):
                encode_record_into(record, text)
                timestamps.append(timestamp)
                ends.append(len(text))
        except ApiResponseError as exc:
            error = exc
        return PreparedPage.of(page, timestamps, bytes(text), ends, error)

    def _follow_cursor(
        self,
        context: Context,
        first_body: RequestBody,
        paginator: EventsCursorPaginator[PageT],
    ) -> Generator[PageT, None, None]:
        account = self.account_of(context)
        while not paginator.finished:
            body = paginator.current_value or first_body
            request = self.get_http_request(page=PageContext(context, body))
            page = self.fetch(account, request, paginator.page_of)
            yield page
            paginator.advance_past(page)

    # SDK side ---------------------------------------------------------------------------

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        account = self.account_of(context)
        assert context is not None
        access = self.tap.access(account)
        if self.feature not in access["features"]:
            self.logger.warning(
                "%s, account '%s': skipped, the token lacks the '%s' feature (it has: %s). "
                "Issue a token with that feature to read these events.",
                self.name,
                account.name,
                self.feature,
                ", ".join(access["features"]) or "none",
            )
            return
        state = self.get_context_state(context)
        progress = Progress(self.logger, self.name, account.name)
        pages = self.tap.pages_ahead(self, context)
        if pages is None:
            pages = self.request_pages(context, self.first_request_body(state, account))
        # A rejected cursor is answered by reading again from the last emitted event minus the
        # lookback. Again after a later rejection (cursors can expire more than once in a long
        # backfill), but only once the tap got past where the previous fallback began: a
        # fallback that cannot move would otherwise loop.
        fallbacks = 0
        fallback_from: object = None
        while True:
            try:
                yield from self.emit(context, state, progress, pages)
                break
            except CursorRejectedError as rejected:
                newest = state.get("cursor_max_timestamp")
                if fallbacks and (newest == fallback_from or fallbacks >= self.MAX_FALLBACKS):
                    msg = (
                        f"{self.name}, account '{account.name}': the API rejected a cursor again "
                        f"before the fallback to a timestamp got past its last event ({rejected})"
                        "; the next run starts again from the last emitted event minus "
                        "lookback_minutes"
                    )
                    raise ApiResponseError(msg) from None
                fallbacks += 1
                fallback_from = newest
                pages = self.request_pages(context, self.fall_back(state, account, rejected))
        self.finished.append(progress)
        self.logger.info("%s", progress.summary())

    def emit(
        self,
        context: Context,
        state: dict[str, Any],
        progress: Progress,
        pages: Iterable[Page | PreparedPage],
    ) -> Iterator[dict[str, Any]]:
        """SDK side: yield each page's records, then commit its cursor and write STATE.

        The code after a page's last `yield` runs only when the SDK asks for the next record,
        that is after it wrote the page's last record: the cursor never gets ahead of what
        was emitted.

        Args:
            context: The account's partition context.
            state: The partition's writable state.
            progress: Counts for progress lines.
            pages: Pages in API order.

        Yields:
            Records.

        """
        account_name = context["account_name"]
        for page in pages:
            newest: str | None = None
            emitted = 0
            if isinstance(page, PreparedPage):
                for timestamp, record_json in page.record_json():
                    encoded = EncodedRecord(timestamp=timestamp, account_name=account_name)
                    encoded.json = record_json
                    yield encoded
                if page.error is not None:
                    raise page.error
                newest, emitted = page.newest, len(page.ends)
            else:
                for timestamp, record in self.accepted_records(page, account_name):
                    if newest is None or timestamp > newest:
                        newest = timestamp
                    emitted += 1
                    yield record
            self.commit_page(state, page, newest)
            progress.page_done(emitted, newest)

    def accepted_records(
        self, page: Page, account_name: str
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Shape a page's events into records, leaving out those at or after `end_date`.

        Args:
            page: A parsed page.
            account_name: Its account.

        Yields:
            (normalised timestamp, record), in API order.

        """
        end_bound = self.end_bound
        for item in page.items:
            record = self.shape_record(item, account_name)
            timestamp = record["timestamp"]
            if end_bound is None or timestamp < end_bound:  # end_date is exclusive
                yield timestamp, record

    def shape_record(self, item: dict[str, Any], account_name: str) -> dict[str, Any]:
        """Make an API item a record: UTC timestamp, account name, no unknown top-level fields.

        Nested values pass through as sent.

        Args:
            item: One element of a page's `items` (changed in place).
            account_name: The configured account name.

        Returns:
            The record.

        Raises:
            ApiResponseError: The item has no usable `uuid` or `timestamp`.

        """
        try:
            item["timestamp"] = normalise_timestamp(item["timestamp"])
        except (KeyError, TypeError, ValueError):
            msg = (
                f"{self.name}, account '{account_name}': event {item.get('uuid')!r:.60} has no "
                f"RFC 3339 timestamp ({item.get('timestamp')!r:.60})"
            )
            raise ApiResponseError(msg) from None
        if type(item.get("uuid")) is not str:
            msg = f"{self.name}, account '{account_name}': an event has no uuid"
            raise ApiResponseError(msg)
        if not self._known_fields.issuperset(item):
            self.drop_unknown_fields(item)
        item["account_name"] = account_name
        return item

    def drop_unknown_fields(self, item: dict[str, Any]) -> None:
        """Remove top-level fields the schema does not know, naming each once per run.

        The tap checks this itself rather than leaving it to the SDK's type conformance, which
        may be turned down for speed.

        Args:
            item: The item (changed in place).

        """
        unknown = [key for key in item if key not in self._known_fields]
        for key in unknown:
            del item[key]
        with self._reported_lock:  # read-ahead workers prepare pages of several accounts
            new = sorted(set(unknown) - self._reported_fields)
            self._reported_fields.update(new)
        if new:
            self.logger.warning(
                "%s: the API sent top-level field(s) this tap does not know: %s; they are left "
                "out of the records (nested unknown keys are kept). A newer tap may know them.",
                self.name,
                ", ".join(new),
            )

    def commit_page(
        self, state: dict[str, Any], page: Page | PreparedPage, newest: str | None
    ) -> None:
        """Record that every record of `page` was emitted, and write a STATE message.

        Args:
            state: The partition's writable state.
            page: The page just emitted.
            newest: Largest normalised timestamp emitted from it.

        """
        self.settle_bookmark()  # the SDK's per-record bookmark first, as without deferral
        state["cursor"] = page.cursor
        state["cursor_endpoint"] = self.path
        state["cursor_end_date"] = self.end_bound
        previous = state.get("cursor_max_timestamp")
        if newest is not None and (previous is None or newest > previous):
            state["cursor_max_timestamp"] = newest
        if state.get("cursor_max_timestamp") is not None:
            # The SDK's bookmark follows the latest record; keep it at the newest event instead.
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = state["cursor_max_timestamp"]
        self.write_state_now()

    def write_state_now(self) -> None:
        """Write a STATE message even if no record was written since the last one.

        Uses the SDK's private `_write_state_message` and its flushed flag (pinned by
        `singer-sdk~=0.54.9`; `tests/tap/test_state.py` fails if either moves).
        """
        self.state_manager.is_flushed = False
        self._write_state_message()

    def planned_first_body(self, context: Context, account: Account) -> RequestBody | None:
        """Choose the first body of a partition not synced yet, for read-ahead (None: leave it).

        Reads the partition's stored state without creating it (the SDK does that when the
        partition's turn comes, and STATE messages must not show it earlier). A stored cursor
        of another endpoint is left to `first_request_body`, which warns about it once.

        Args:
            context: The partition context.
            account: Its account.

        Returns:
            What `first_request_body` will choose, or None.

        """
        bookmark = self.tap_state.get("bookmarks", {}).get(self.name, {})
        stored: dict[str, Any] = next(
            (p for p in bookmark.get("partitions", []) if p.get("context") == context), {}
        )
        if stored.get("cursor") and not self.cursor_reusable(stored):
            return None
        return self.first_request_body(stored, account)

    def cursor_reusable(self, state: dict[str, Any]) -> bool:
        """Whether the stored cursor may be sent: same endpoint, and made under the same end_date.

        A cursor keeps the end_time of the reset request it came from: polled again, it never
        serves events past that bound, so after end_date changes it would quietly serve nothing.

        Args:
            state: The partition's state.

        Returns:
            True when `{"cursor": state["cursor"]}` is the right first request.

        """
        return (
            bool(state.get("cursor"))
            and state.get("cursor_endpoint") == self.path
            and state.get("cursor_end_date") == self.end_bound
        )

    def first_request_body(self, state: dict[str, Any], account: Account) -> RequestBody:
        """Choose the first body of a run: the stored cursor when it belongs here, else a reset.

        Args:
            state: The partition's state.
            account: Its account, for messages.

        Returns:
            `{"cursor": ...}` or a reset body.

        """
        cursor, endpoint = state.get("cursor"), state.get("cursor_endpoint")
        if self.cursor_reusable(state):
            return {"cursor": cursor}
        bound = state.get("cursor_end_date")
        body = self.reset_body(state)
        if cursor and endpoint != self.path:
            self.logger.warning(
                "%s, account '%s': the stored cursor belongs to %s, not %s (api_version "
                "changed?); reading from %s instead (last emitted event minus lookback).",
                self.name,
                account.name,
                endpoint,
                self.path,
                body["start_time"],
            )
        elif cursor:
            self.logger.warning(
                "%s, account '%s': the stored cursor was made with end_date %s, which is now %s; "
                "reading from %s instead (last emitted event minus lookback).",
                self.name,
                account.name,
                bound or "unset",
                self.end_bound or "unset",
                body["start_time"],
            )
        return body

    @property
    def end_bound(self) -> str | None:
        """The `end_date` setting as a normalised timestamp (None when unset)."""
        end = self.settings.end_date
        return format_timestamp(end) if end else None

    def reset_body(self, state: dict[str, Any]) -> RequestBody:
        """Build a reset request from the last emitted event minus the lookback, or start_date.

        Clamped to the API's 120-day retention and never before start_date.

        Args:
            state: The partition's state.

        Returns:
            `{"limit", "start_time"[, "end_time"]}`.

        """
        settings = self.settings
        now = datetime.now(timezone.utc)
        start = max(settings.start_date or retention_start(now), retention_start(now))
        since = state.get("cursor_max_timestamp") or state.get("replication_key_value")
        if isinstance(since, str):
            try:
                start = max(start, parse_timestamp(since) - settings.lookback)
            except ValueError:
                self.logger.warning("%s: ignoring an unreadable bookmark in state", self.name)
        body: RequestBody = {"limit": settings.page_size, "start_time": _rfc3339_floor(start)}
        if settings.end_date is not None:
            body["end_time"] = _rfc3339_ceil(settings.end_date)
        return body

    def fall_back(
        self, state: dict[str, Any], account: Account, rejected: CursorRejectedError
    ) -> RequestBody:
        """After a rejected cursor: forget it (null, so a state merge cannot restore it).

        Args:
            state: The partition's state.
            account: Its account, for the message.
            rejected: The rejection.

        Returns:
            The reset body to read from instead.

        """
        body = self.reset_body(state)
        self.logger.warning(
            "%s, account '%s': the API rejected the cursor (%s); reading again from %s (last "
            "emitted event minus lookback_minutes). Events in that window may arrive twice; "
            "the primary key removes the duplicates.",
            self.name,
            account.name,
            rejected,
            body["start_time"],
        )
        state["cursor"] = None
        state["cursor_endpoint"] = None
        state["cursor_end_date"] = None
        self.write_state_now()
        return body

    @override
    def log_sync_costs(self) -> None:
        # Called by the SDK for every stream at the end of the run: the run summary.
        if self.finished:
            self.logger.info(
                "%s summary: %s",
                self.name,
                ", ".join(f"'{p.account_name}' {p.records} records" for p in self.finished),
            )


def _rfc3339_floor(instant: datetime) -> str:
    """Whole seconds, rounded down (an earlier start only re-reads, never skips)."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rfc3339_ceil(instant: datetime) -> str:
    """Whole seconds, rounded up (the tap drops events at or after end_date itself)."""
    utc = instant.astimezone(timezone.utc)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


