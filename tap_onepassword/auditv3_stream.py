"""The audit events v3 (beta) stream: paged by page token, resumed from insertion time.

A run's first request asks from the partition's stored boundary (`auditv3.Boundary`): the whole
second before the last insertion time emitted, with the ids emitted at that instant dropped.
Later requests send only the previous answer's page token, until an answer carries none; a
page token is never stored. A rejected or expired one is answered by asking again from the
last insertion time emitted. Requests go through the run's API client, like every stream's.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode

from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_onepassword import schemas
from tap_onepassword.auditv3 import (
    Boundary,
    V3Page,
    decode_v3_page,
    second_after,
    second_before,
    shape_record,
    start_instant,
    unknown_fields,
)
from tap_onepassword.errors import ApiResponseError, CursorRejectedError
from tap_onepassword.eventfeed import EventFeed
from tap_onepassword.events import OnePasswordStream
from tap_onepassword.pages import V3_PARAMETER_NAMES
from tap_onepassword.progress import Progress
from tap_onepassword.settings import retention_start
from tap_onepassword.timestamps import format_timestamp

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_onepassword.pages import RequestBody
    from tap_onepassword.run import SyncRun
    from tap_onepassword.settings import Account


class AuditEventsV3Stream(EventFeed, OnePasswordStream):
    """Audit events from the v3 beta (`GET /api/v3/auditevents`), polled on insertion time.

    Opt-in (not selected unless the catalog or Meltano's `select` says so). A run's first
    request asks from the stored boundary (see `auditv3.Boundary`), later ones follow the
    answers' page tokens; a page token is never kept across runs. A rejected or expired page
    token is answered by asking again from the last insertion time emitted.
    """

    name = "audit_events_v3"
    feature = "auditevents"
    API_VERSION = "v3"  # its own endpoint, whatever `api_version` (v1 or v2) says
    http_method = "GET"
    docs = ("v3 beta", "https://developer.1password.com/docs/events-api/beta/")
    schema = schemas.AUDIT_EVENT_V3.to_dict()
    primary_keys = ("account_name", "event_id")
    replication_key = "insert_time"
    selected_by_default = False
    # Records are decoded JSON with every column set by `shape_record`: nothing to conform.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    REPLICATION: ClassVar[str] = "insertion time"
    """What later runs resume from (the other event streams: the API cursor)."""

    def __init__(self, tap: Tap, run: SyncRun) -> None:
        """Create the stream.

        Args:
            tap: The tap.
            run: What this run's streams share.

        """
        super().__init__(tap, run)
        self._reported_fields: set[str] = set()

    # Network side -----------------------------------------------------------------------

    def first_query(self, boundary: Boundary, page_size: int | None = None) -> RequestBody:
        """Build the first request's parameters: page size and the insertion-time window.

        Args:
            boundary: What was emitted last (stored, or earlier in this run).
            page_size: Events per page, when not the `page_size` setting (`--test` asks one).

        Returns:
            `{max_page_size, start_time[, end_time]}` (or the earlier names).

        """
        settings = self.settings
        retention = retention_start(datetime.now(timezone.utc))
        earliest = retention
        if boundary.insert_time is None and settings.start_date is not None:
            earliest = max(settings.start_date, retention)  # start_date bounds the first run
        size_name, _ = V3_PARAMETER_NAMES[settings.v3_parameter_names]
        query: RequestBody = {
            size_name: page_size or settings.page_size,
            "start_time": second_before(start_instant(boundary, earliest)),
        }
        if settings.end_date is not None:
            query["end_time"] = second_after(settings.end_date)
        return query

    def request_pages(self, context: Context, first: RequestBody) -> Generator[V3Page, None, None]:
        """Network side: an account's pages, from `first` while an answer carries a page token.

        Args:
            context: The account's partition context.
            first: The first request's parameters.

        Yields:
            Pages, in order.

        """
        account = self.account_of(context)
        client = self.run.client
        _, token_name = V3_PARAMETER_NAMES[self.settings.v3_parameter_names]
        query, previous = first, None
        while True:
            # Parameters percent-encoded in full: a raw "+" or ":" is not left to the server.
            path = f"{self.path}?{urlencode(query, quote_via=quote, safe='')}"
            page = client.fetch(
                account,
                "GET",
                path,
                None,
                lambda response: decode_v3_page(response.content),
                label=self.name,
            )
            yield page
            token = page.next_token
            if token is None or (token == previous and not page.audit_events):
                return  # the last page (an empty page repeating its token ends it too)
            query, previous = {token_name: token}, token

    # SDK side ---------------------------------------------------------------------------

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        account = self.account_of(context)
        assert context is not None
        if self.run.partition_access(self, context) is None:
            return  # its account failed in this run, or its token lacks the feature
        state = self.get_context_state(context)
        start = self.settings.start_date
        boundary = Boundary.from_state(state, format_timestamp(start) if start else None)
        last, end_bound = boundary.insert_time, self.end_bound
        if last is not None and end_bound is not None and last >= end_bound:
            return  # everything before end_date was emitted
        progress = Progress(self.logger, self.name, account.name)
        # With `accounts`, a failure of this account is logged and set aside (outside the
        # summary's block, which counts the partition as failed); the others go on.
        with (
            self.run.account_failures(account),
            self.run.summary.partition(self, context, state, progress),
        ):
            yield from self._read(context, state, boundary, progress, account)

    def _read(
        self,
        context: Context,
        state: dict[str, Any],
        boundary: Boundary,
        progress: Progress,
        account: Account,
    ) -> Iterable[dict[str, Any]]:
        """Page from the boundary, falling back to it when a page token is rejected."""
        fallbacks, fallback_from = 0, boundary.insert_time
        while True:
            pages = self.request_pages(context, self.first_query(boundary))
            try:
                yield from self.emit(context, state, boundary, progress, pages)
                break
            except CursorRejectedError as rejected:  # here: a v3 page token
                stuck = boundary.insert_time == fallback_from
                if fallbacks and (stuck or fallbacks >= self.MAX_FALLBACKS):
                    msg = (
                        f"{self.name}, account '{account.name}': the API rejected a page token "
                        f"again before asking from the last insertion time got further "
                        f"({rejected}); the next run asks again from there"
                    )
                    raise ApiResponseError(msg) from None
                fallbacks += 1
                fallback_from = boundary.insert_time
                self.logger.warning(
                    "%s, account '%s': the API rejected the page token (%s); asking again from "
                    "the last insertion time emitted (%s), dropping the events already emitted",
                    self.name,
                    account.name,
                    rejected,
                    boundary.insert_time or "none yet: the run's start",
                )

    def emit(
        self,
        context: Context,
        state: dict[str, Any],
        boundary: Boundary,
        progress: Progress,
        pages: Iterable[V3Page],
    ) -> Iterator[dict[str, Any]]:
        """Yield each page's new records, then store the boundary and write STATE.

        A record counts as emitted when the SDK asks for the next one (it wrote this one).

        Args:
            context: The account's partition context.
            state: The partition's writable state.
            boundary: What was emitted last; moved forward here.
            progress: Counts for progress lines.
            pages: Pages in API order.

        Yields:
            Records.

        """
        account_name = context["account_name"]
        end_bound = self.end_bound
        for page in pages:
            emitted = 0
            for event in page.audit_events:
                self.report_unknown_fields(event)
                record = shape_record(event, account_name, self.name)
                if end_bound is not None and record["insert_time"] >= end_bound:
                    continue  # end_date is exclusive (end_time was rounded up to a second)
                if boundary.emitted(record):
                    continue
                yield record
                boundary.advance(record)
                emitted += 1
            self.settle_bookmark()
            boundary.save(state)
            self.write_state_now()
            progress.page_done(emitted, boundary.insert_time)

    def report_unknown_fields(self, event: dict[str, Any]) -> None:
        """Name, once per run, top-level fields no column is drawn from (kept in `event`).

        Args:
            event: An event as sent.

        """
        unknown = unknown_fields(event)
        if not unknown:
            return
        new = sorted(set(unknown) - self._reported_fields)
        self._reported_fields.update(new)
        if new:
            self.logger.warning(
                "%s: the API sent top-level field(s) this tap has no column for: %s; they are "
                "kept in the `event` column. The beta may have changed; a newer tap may know "
                "them.",
                self.name,
                ", ".join(new),
            )

    @property
    def end_bound(self) -> str | None:
        """The `end_date` setting as a normalised timestamp (None when unset)."""
        end = self.settings.end_date
        return format_timestamp(end) if end else None
