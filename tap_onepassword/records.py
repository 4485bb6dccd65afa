"""API events made records: shaped one by one, or a whole page prepared ahead of its turn.

A record is the API's event with its timestamp in UTC (nine fractional digits), the account's
name added, and top-level fields the schema does not know left out (named once per run).
Events at or after `end_date` are not records. Nothing here touches state, so read-ahead's
workers prepare pages with it while the SDK side emits others.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tap_onepassword.errors import ApiResponseError
from tap_onepassword.output import encode_record_into
from tap_onepassword.pages import PreparedPage
from tap_onepassword.timestamps import normalise_timestamp

if TYPE_CHECKING:
    import logging
    from collections.abc import Iterator

    from tap_onepassword.pages import Page


class EventRecords:
    """How one event stream makes records of the API's events."""

    def __init__(
        self,
        stream_name: str,
        schema: dict[str, Any],
        end_bound: str | None,
        logger: logging.Logger,
    ) -> None:
        """Describe the records of one stream.

        Args:
            stream_name: The stream, for messages.
            schema: Its JSON schema (the top-level fields it knows).
            end_bound: The `end_date` setting, normalised (None when unset).
            logger: Where unknown fields are named.

        """
        self.name = stream_name
        self.end_bound = end_bound
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
        timestamps: list[str] = []
        text = bytearray()
        ends: list[int] = []
        error: ApiResponseError | None = None
        try:
            for timestamp, record in self.accepted(page, account_name):
                encode_record_into(record, text)
                timestamps.append(timestamp)
                ends.append(len(text))
        except ApiResponseError as exc:
            error = exc
        return PreparedPage.of(page, timestamps, bytes(text), ends, error)

    def accepted(self, page: Page, account_name: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Shape a page's events into records, leaving out those at or after `end_date`.

        Args:
            page: A parsed page.
            account_name: Its account.

        Yields:
            (normalised timestamp, record), in API order.

        """
        end_bound = self.end_bound
        for item in page.items:
            record = self.shape(item, account_name)
            timestamp = record["timestamp"]
            if end_bound is None or timestamp < end_bound:  # end_date is exclusive
                yield timestamp, record

    def shape(self, item: dict[str, Any], account_name: str) -> dict[str, Any]:
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
