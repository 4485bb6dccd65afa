"""API events made records: shaped one by one, or a whole page prepared ahead of its turn.

A record is the API's event with its timestamp in UTC (nine fractional digits), the account's
name added, and top-level fields the schema does not know left out (named once per run).
Events before `start_date` or at or after `end_date` (to the nanosecond) are not records. A
malformed event is a record all the same: without a usable `uuid` it gets a surrogate made from
its content, and an unreadable `timestamp` becomes null with its text kept in
`unreadable_timestamp` (`strict_events` stops at either instead). Nothing here touches state,
so read-ahead's workers prepare pages with it while the SDK side emits others.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tap_onepassword.errors import ApiResponseError
from tap_onepassword.event_ids import surrogate_uuid
from tap_onepassword.output import (
    RECORD_SEPARATOR,
    EncodedPage,
    EncodedRecord,
    encode_record_into,
)
from tap_onepassword.pages import MalformedEvents, PreparedPage
from tap_onepassword.timestamps import normalise_timestamp

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator

    from tap_onepassword.event_ids import TailIds
    from tap_onepassword.pages import Page


@dataclass
class PageTally:
    """What emitting one page did, for its commit and progress."""

    newest: str | None = None
    """The largest readable timestamp among its records."""
    emitted: int = 0
    dropped: int = 0
    """Records left out as already emitted (their ids were in the tail memory)."""
    ids: list[str] = field(default_factory=list)
    """The ids of all its records, emitted or dropped."""


class EventRecords:
    """How one event stream makes records of the API's events."""

    def __init__(  # noqa: PLR0913 - the stream's name, schema, bounds, logger and two switches
        self,
        stream_name: str,
        schema: dict[str, Any],
        bounds: tuple[str | None, str | None],
        logger: logging.Logger,
        *,
        strict: bool = False,
        whole_pages: bool = False,
    ) -> None:
        """Describe the records of one stream.

        Args:
            stream_name: The stream, for messages.
            schema: Its JSON schema (the top-level fields it knows).
            bounds: The `start_date` and `end_date` settings, normalised (None when unset).
            logger: Where unknown fields are named.
            strict: `strict_events`: an event without a uuid or a readable timestamp stops
                the run.
            whole_pages: Whether the stream writes a prepared page's records as one
                `EncodedPage` (`FastPathStream.writes_whole_pages`).

        """
        self.name = stream_name
        self.start_bound, self.end_bound = bounds
        self.strict = strict
        self.whole_pages = whole_pages
        self.logger = logger
        self._known_fields = frozenset(schema["properties"])
        self._reported_fields: set[str] = set()
        self._reported_lock = threading.Lock()

    def prepare(self, page: Page, account_name: str) -> PreparedPage:
        """Shape and encode a page's records ahead of their turn, as `emit` would write them.

        An event `emit` would fail on (`shape`) ends the page there: its error is kept,
        to be raised after the records before it are written, where `emit` raises it.

        Args:
            page: A parsed page.
            account_name: Its account.

        Returns:
            The prepared page.

        """
        timestamps: list[str | None] = []
        ids: list[str] = []
        text = bytearray()
        ends: list[int] = []
        error: ApiResponseError | None = None
        malformed = MalformedEvents()
        try:
            for timestamp, record in self.accepted(page, account_name, malformed):
                encode_record_into(record, text)
                timestamps.append(timestamp)
                ids.append(record["uuid"])
                ends.append(len(text))
                text.append(RECORD_SEPARATOR)
        except ApiResponseError as exc:
            error = exc
        return PreparedPage.of(
            page,
            timestamps=timestamps,
            ids=ids,
            text=bytes(text),
            ends=ends,
            error=error,
            malformed=malformed,
        )

    def emitted(
        self,
        page: Page | PreparedPage,
        account_name: str,
        tail: TailIds,
        malformed: MalformedEvents,
        tally: PageTally,
    ) -> Iterator[dict[str, Any]]:
        """Yield the records of a page to emit: those whose id the tail memory does not hold.

        A prepared page's records come as `EncodedRecord`s, or as one `EncodedPage` when the
        stream writes whole pages and every record is to be emitted (the usual case); its error, if
        preparing stopped at an event, is raised after the records before it.

        Args:
            page: A parsed or prepared page.
            account_name: Its account.
            tail: The ids of the page the stored cursor came from.
            malformed: Counts the malformed events emitted anyway.
            tally: Filled in with what the page held.

        Yields:
            Records, in API order.

        """
        seen = tail.seen if tail else None  # usually nothing is remembered: no check per record
        if isinstance(page, PreparedPage):
            tally.ids = page.ids
            if self.whole_pages and seen is None:
                if page.ends:
                    whole = EncodedPage(account_name=account_name)
                    whole.lines, whole.count = page.text, len(page.ends)
                    yield whole
            else:
                records = page.record_json()
                if seen is not None:
                    records = self._unseen(records, page.ids, seen, tally)
                for timestamp, json_text in records:
                    encoded = EncodedRecord(timestamp=timestamp, account_name=account_name)
                    encoded.json = json_text
                    yield encoded
            malformed.add(page.malformed)
            if page.error is not None:
                raise page.error
            tally.newest, tally.emitted = page.newest, len(page.ends) - tally.dropped
            return
        for timestamp, record in self.accepted(page, account_name, malformed):
            tally.ids.append(record["uuid"])
            if seen is not None and seen(record["uuid"]):
                tally.dropped += 1
                continue
            if timestamp is not None and (tally.newest is None or timestamp > tally.newest):
                tally.newest = timestamp
            tally.emitted += 1
            yield record

    @staticmethod
    def _unseen(
        records: Iterator[tuple[str | None, memoryview]],
        ids: list[str],
        seen: Callable[[str], bool],
        tally: PageTally,
    ) -> Iterator[tuple[str | None, memoryview]]:
        """Leave out the prepared records whose id was seen, counting them."""
        for record, event_id in zip(records, ids, strict=True):
            if seen(event_id):
                tally.dropped += 1
            else:
                yield record

    def accepted(
        self, page: Page, account_name: str, malformed: MalformedEvents
    ) -> Iterator[tuple[str | None, dict[str, Any]]]:
        """Shape a page's events into records, leaving out those outside start_date..end_date.

        `start_date` is inclusive and `end_date` exclusive, to the nanosecond. An event whose
        timestamp cannot be read is kept: nothing says it lies outside.

        Args:
            page: A parsed page.
            account_name: Its account.
            malformed: Counts the events emitted despite a missing uuid or timestamp.

        Yields:
            (normalised timestamp or None, record), in API order.

        """
        low = self.start_bound or ""  # every timestamp is at or after ""
        high = self.end_bound or "~"  # and before "~"
        for item in page.items:
            record = self.shape(item, account_name, malformed)
            timestamp = record["timestamp"]
            if timestamp is None or low <= timestamp < high:
                yield timestamp, record

    def shape(
        self, item: dict[str, Any], account_name: str, malformed: MalformedEvents
    ) -> dict[str, Any]:
        """Make an API item a record: UTC timestamp, account name, no unknown top-level fields.

        Nested values pass through as sent. An event without a usable `uuid` gets a surrogate
        made from its content (before anything in it changes); an unreadable `timestamp`
        becomes null, its text kept in `unreadable_timestamp`.

        Args:
            item: One element of a page's `items` (changed in place).
            account_name: The configured account name.
            malformed: Counts the events emitted despite a missing uuid or timestamp.

        Returns:
            The record.

        Raises:
            ApiResponseError: With `strict_events`: the item has no usable `uuid` or
                `timestamp`.

        """
        event_id = item.get("uuid")
        if type(event_id) is not str or not event_id:
            if self.strict:
                msg = f"{self.name}, account '{account_name}': an event has no uuid"
                raise ApiResponseError(msg)
            item["uuid"] = surrogate_uuid(item)
            malformed.surrogate_ids += 1
        try:
            item["timestamp"] = normalise_timestamp(item["timestamp"])
        except (KeyError, TypeError, ValueError):
            if self.strict:
                msg = (
                    f"{self.name}, account '{account_name}': event {item.get('uuid')!r:.60} has "
                    f"no RFC 3339 timestamp ({item.get('timestamp')!r:.60})"
                )
                raise ApiResponseError(msg) from None
            sent = item.get("timestamp")
            item["unreadable_timestamp"] = (
                sent if isinstance(sent, str) or sent is None else json.dumps(sent)
            )
            item["timestamp"] = None
            malformed.unreadable_timestamps += 1
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
