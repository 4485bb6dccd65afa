"""The base streams: one partition per account, and the event endpoints' cursor state machine.

An event stream reads each account's pages through the run's API client (`request_pages`, or
the pages read ahead) and emits them in order: a page's records first, then the partition's
cursor moves forward and a STATE message is written (`commit_page`). Events the partition's
tail memory holds (the API served the stored cursor's page again) are dropped as emitted.
Without a usable stored cursor, or after the API rejects one, it reads again from the last
emitted event minus the lookback (`first_request_body`, `reset_body`, `fall_back`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import RESTStream
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_onepassword import partition_state
from tap_onepassword.accountmetrics import AccountMeters
from tap_onepassword.errors import CursorRejectedError, CursorUnrecoverableError
from tap_onepassword.event_ids import TailIds
from tap_onepassword.eventfeed import EventFeed
from tap_onepassword.fastpath import FastPathStream
from tap_onepassword.pages import (
    EventsCursorPaginator,
    HeldPage,
    MalformedEvents,
    Page,
    PageT,
    PreparedPage,
    RequestBody,
    decode_held_page,
    decode_page,
)
from tap_onepassword.progress import PARTITION_CHATTER, Progress
from tap_onepassword.records import EventRecords, PageTally
from tap_onepassword.settings import retention_start
from tap_onepassword.timestamps import parse_timestamp, rfc3339_ceil, rfc3339_floor

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_onepassword.run import SyncRun
    from tap_onepassword.settings import Account, Settings


class OnePasswordStream(AccountMeters, FastPathStream, RESTStream[RequestBody | None]):
    """A stream read per configured account, given what the run shares; metrics per account."""

    def __init__(self, tap: Tap, run: SyncRun) -> None:
        """Bind the stream to its tap and to the run's settings, API client and answers.

        Args:
            tap: The tap.
            run: What this run's streams share.

        """
        super().__init__(tap=tap)
        self.run = run

    @property
    def settings(self) -> Settings:
        """The run's checked settings."""
        return self.run.settings

    @property
    @override
    def url_base(self) -> str:
        # Each account has its own host; the API client joins it with `path`.
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

    docs: ClassVar[tuple[str, str]]
    """The API's documentation of the stream's records: (title, URL)."""

    @classmethod
    def path_for(cls, api_version: str) -> str:
        """Return the endpoint's path for an `api_version` setting (`v1` or `v2`)."""
        raise NotImplementedError

    @property
    def path(self) -> str:  # type: ignore[override] # the SDK's is set once; this follows config
        """The endpoint's path for the configured `api_version`."""
        return self.path_for(self.settings.api_version)

    @property
    @override
    def partitions(self) -> list[dict[str, Any]] | None:
        # One partition per configured account, in configuration order. The SDK's default
        # (partitions found in state) would drop new accounts and keep removed ones.
        return [{"account_name": account.name} for account in self.settings.accounts]


class EventStream(EventFeed, OnePasswordStream):
    """One event endpoint (sign-in attempts, item usages, audit events) for every account."""

    BOOKMARK_PER_RECORD = False  # commit_page sets it, for whole pages (partition_state.py)

    http_method = "POST"
    primary_keys = ("account_name", "uuid")
    replication_key = "timestamp"

    # Records are decoded JSON: conforming them could only drop unknown top-level fields
    # (EventRecords does that itself, naming them), drop unknown nested keys (every nested
    # object allows them) or coerce a boolean-only property (there is none): skipped.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, run: SyncRun) -> None:
        """Create the stream, given the tap and what this run's streams share."""
        super().__init__(tap, run)
        self._stored = partition_state.StoredPartitions()
        self.logger.addFilter(PARTITION_CHATTER)

    @cached_property
    def event_records(self) -> EventRecords:
        """How this stream makes records of the API's events (made on first use)."""
        return EventRecords(
            self.name,
            self.schema,
            (self.settings.start_bound, self.end_bound),
            self.logger,
            strict=self.settings.strict_events,
            whole_pages=self.writes_whole_pages,
        )

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
        return self._follow_cursor(context, first_body, EventsCursorPaginator(decode_page))

    def request_pages_ahead(
        self, context: Context, first_body: RequestBody, held: Callable[[], bool]
    ) -> Generator[Page | HeldPage | PreparedPage, None, None]:
        """Network side for read-ahead: `request_pages`, its pages made ready to wait.

        When records go out unchanged (`writes_records_unchanged`, asked on the main thread
        first), every page is prepared (`EventRecords.prepare`): the SDK side then only writes
        lines. Otherwise a page keeps its events as text when `held()` says, as it arrives,
        that it will wait.

        Args:
            context: The account's partition context.
            first_body: A reset body or `{"cursor": ...}`.
            held: Whether a page arriving now will wait before it is emitted.

        Returns:
            Pages, in order; `emit` writes of each what it writes of `request_pages`' page.

        """
        account_name = context["account_name"]
        records = self.event_records

        def prepare(body: bytes) -> PreparedPage:
            return records.prepare(decode_page(body), account_name)

        def hold(body: bytes) -> Page | HeldPage:
            return decode_held_page(body) if held() else decode_page(body)

        decode: Callable[[bytes], Page | HeldPage | PreparedPage]
        decode = prepare if self.writes_records_unchanged else hold
        paginator: EventsCursorPaginator[Page | HeldPage | PreparedPage]
        paginator = EventsCursorPaginator(decode)
        return self._follow_cursor(context, first_body, paginator)

    def _follow_cursor(
        self,
        context: Context,
        first_body: RequestBody,
        paginator: EventsCursorPaginator[PageT],
    ) -> Generator[PageT, None, None]:
        return self.run.client.follow_cursor(
            self.account_of(context),
            self.http_method,
            self.path,
            first_body,
            paginator,
            label=self.name,
        )

    # SDK side ---------------------------------------------------------------------------

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        account = self.account_of(context)
        assert context is not None
        if self.run.partition_access(self, context) is None:
            return  # its account failed in this run, or its token lacks the feature
        state = self.get_context_state(context)
        progress = Progress(self.logger, self.name, account.name)
        malformed = MalformedEvents()
        # With `accounts`, a failure of this account is logged and set aside (outside the
        # summary's block, which counts the partition as failed); the others go on.
        with (
            self.run.account_failures(account),
            self.run.summary.partition(self, context, state, progress),
        ):
            pages = self.run.pages_ahead(self, context)
            if pages is None:
                pages = self.request_pages(context, self.first_request_body(state, account))
            # A rejected cursor is answered by reading again from the last emitted event minus
            # the lookback. Again after a later rejection (cursors can expire more than once in
            # a long backfill), but only once the tap got past where the previous fallback
            # began: a fallback that cannot move would otherwise loop.
            fallbacks, fallback_from = 0, None
            while True:
                try:
                    yield from self.emit(context, state, progress, pages, malformed)
                    break
                except CursorRejectedError as rejected:
                    newest = partition_state.newest_emitted(state)
                    if fallbacks and (newest == fallback_from or fallbacks >= self.MAX_FALLBACKS):
                        raise CursorUnrecoverableError(self.name, account.name, rejected) from None
                    fallbacks, fallback_from = fallbacks + 1, newest
                    pages = self.request_pages(context, self.fall_back(state, account, rejected))
        malformed.warn(self.logger, f"{self.name}, account '{account.name}'")

    def emit(
        self,
        context: Context,
        state: dict[str, Any],
        progress: Progress,
        pages: Iterable[Page | PreparedPage],
        malformed: MalformedEvents,
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
            malformed: Counts the malformed events emitted anyway.

        Yields:
            Records.

        """
        account_name = context["account_name"]
        tail = TailIds.load(state.get("cursor_page_ids"))
        for page in pages:
            tally = PageTally()
            yield from self.event_records.emitted(page, account_name, tail, malformed, tally)
            self.run.outcome.count_reserved(self.name, account_name, tally.dropped)
            if tally.ids:  # re-posting this page's cursor may serve it again, if it is the last
                tail = TailIds() if page.has_more else TailIds.of(tally.ids)
            self.commit_page(state, page, tally.newest, tail)
            progress.page_done(tally.emitted, tally.newest)
            self.log_record_count_if_due()

    def commit_page(
        self, state: dict[str, Any], page: Page | PreparedPage, newest: str | None, tail: TailIds
    ) -> None:
        """Record that every record of `page` was emitted, and offer a STATE (`cadence.py`).

        Args:
            state: The partition's writable state.
            page: The page just emitted.
            newest: Largest normalised timestamp emitted from it.
            tail: The ids re-posting its cursor may serve again.

        """
        partition_state.commit(
            state,
            cursor=page.cursor,
            page_ids=tail.dump(),
            endpoint=self.path,
            end_date=self.end_bound,
            replication_key=self.replication_key,
            newest=newest,
        )
        self.write_state_now()

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
        stored = self._stored.of(bookmark.get("partitions") or [], context)
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
        return self.settings.end_bound

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
        since = partition_state.newest_emitted(state)
        if isinstance(since, str):
            try:
                start = max(start, parse_timestamp(since) - settings.lookback)
            except ValueError:
                self.logger.warning("%s: ignoring an unreadable bookmark in state", self.name)
        body: RequestBody = {"limit": settings.page_size, "start_time": rfc3339_floor(start)}
        if settings.end_date is not None:
            body["end_time"] = rfc3339_ceil(settings.end_date)
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
