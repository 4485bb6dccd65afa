"""The data endpoints' pages: their format, parsed once, and paging by body cursor.

A data endpoint answers `{"cursor", "has_more", "items"}`; the next page is asked for with
`{"cursor": ...}` while `has_more` is true. Nothing here touches stream state, so pages can be
fetched on any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_onepassword.errors import ApiResponseError

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator

    import requests

RequestBody = dict[str, Any]
"""A JSON request body: `{"cursor": ...}` to continue, or `{"limit", "start_time", ...}`."""


class Page(msgspec.Struct, frozen=True):
    """One response of a data endpoint."""

    cursor: str
    has_more: bool
    items: list[dict[str, Any]]

    @property
    def empty(self) -> bool:
        """Whether the page has no events (legal, even with `has_more` true)."""
        return not self.items

    def parsed(self) -> Page:
        """Return the page itself (a `HeldPage` parses its events here).

        Returns:
            This page.

        """
        return self


class HeldPage(msgspec.Struct, frozen=True):
    """A page whose events are kept as the JSON text the API sent, to be parsed when emitted.

    Read-ahead holds pages for a while: as text they take about a third of the memory of
    parsed events, and the garbage collector has nothing in them to walk (parsed, a buffer of
    pages costs a collection pass over every event each time one runs). The body is checked
    as thoroughly as `decode_page` checks it, so `parsed` fails only where `decode_page` would
    have: on events that are JSON but not objects.
    """

    cursor: str
    has_more: bool
    items: msgspec.Raw

    @property
    def empty(self) -> bool:
        """Whether the page has no events (legal, even with `has_more` true)."""
        text = self.items
        return len(text) < _SHORT_ARRAY and not bytes(text)[1:-1].strip()

    def parsed(self) -> Page:
        """Parse the events.

        Returns:
            The page, as `decode_page` would have returned it.

        Raises:
            ApiResponseError: An event is not a JSON object (`decode_page`'s error).

        """
        try:
            items = _items_decoder.decode(self.items)
        except msgspec.ValidationError as exc:
            where = str(exc).replace("`$", "`$.items", 1)
            msg = f"the API answered a body that is not an events page ({where})"
            raise ApiResponseError(msg) from None
        return Page(self.cursor, self.has_more, items)


@dataclass(slots=True)
class MalformedEvents:
    """Events emitted although the API sent them without a usable `uuid` or `timestamp`."""

    surrogate_ids: int = 0
    """Events given a surrogate key (no `uuid`, or not a text)."""
    unreadable_timestamps: int = 0
    """Events whose `timestamp` is not RFC 3339 (kept as text in `unreadable_timestamp`)."""

    def __bool__(self) -> bool:
        """Whether any event was malformed."""
        return bool(self.surrogate_ids or self.unreadable_timestamps)

    def add(self, other: MalformedEvents) -> None:
        """Add another page's counts.

        Args:
            other: The counts to add.

        """
        self.surrogate_ids += other.surrogate_ids
        self.unreadable_timestamps += other.unreadable_timestamps

    def warn(self, logger: logging.Logger, label: str) -> None:
        """Log one WARNING with the counts, if any event was malformed.

        Args:
            logger: Where it goes.
            label: The stream and account.

        """
        if self:
            logger.warning("%s: %s", label, self.describe())

    def describe(self) -> str:
        """Say what was found, for one WARNING per stream and account.

        Returns:
            The counts and what the tap did with each kind.

        """
        found = []
        if self.surrogate_ids:
            found.append(
                f"{self.surrogate_ids} without a uuid (given a surrogate key made from the "
                "event's content, `surrogate-...`)"
            )
        if self.unreadable_timestamps:
            found.append(
                f"{self.unreadable_timestamps} with an unreadable timestamp (timestamp null, "
                "the text in unreadable_timestamp; the bookmark did not move for them)"
            )
        return (
            f"the API sent malformed events, emitted anyway: {'; '.join(found)}. Set "
            "strict_events to stop at such an event instead."
        )


PREPARED_RECORD_OVERHEAD = 128
"""Bytes a prepared record takes besides its JSON: its timestamp, end offset and list slots."""


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """A page whose events are already records, encoded as the JSON their RECORD lines hold.

    Read-ahead prepares the pages of a stream whose records reach the output unchanged (see
    `fastpath.FastPathStream`): a worker parses, shapes and encodes them while the SDK side
    waits on the network, and when the page's turn comes the SDK side only copies the JSON
    (usually the whole page at once, `SingerOutput.write_encoded_lines`). The records' JSON is
    one block of bytes, one record per line, about the size of the page's text: nothing for the
    garbage collector to walk, and one allocation to free rather than a thousand blocks of some
    700 bytes each (too large for Python's small-object allocator: from the C heap).
    `EventRecords.prepare` makes one.
    """

    cursor: str
    has_more: bool
    events: int
    """How many events the API sent (some may lie past `end_date` and have no record)."""
    timestamps: list[str | None]
    """Each record's normalised timestamp (its replication key; None if unreadable), in order."""
    ids: list[str]
    """Each record's `uuid`, in order."""
    text: bytes
    """The records' JSON, each followed by a newline (which JSON text never holds raw)."""
    ends: list[int]
    """Where each record's JSON ends in `text` (its newline is at that offset)."""
    newest: str | None
    """The largest of `timestamps`."""
    error: Exception | None
    """What stopped preparing at the event after the last record (raised once they are out)."""
    malformed: MalformedEvents
    """Events among the records the API sent without a usable uuid or timestamp."""
    held_bytes: int
    """About the memory the page takes while it waits."""

    @classmethod
    def of(  # noqa: PLR0913 - one argument per part of the prepared page
        cls,
        page: Page,
        *,
        timestamps: list[str | None],
        ids: list[str],
        text: bytes,
        ends: list[int],
        error: Exception | None,
        malformed: MalformedEvents,
    ) -> PreparedPage:
        """Describe `page` prepared: its records' timestamps, ids and JSON.

        Args:
            page: The parsed page.
            timestamps: Each record's timestamp.
            ids: Each record's uuid.
            text: The records' JSON, one after another.
            ends: Where each ends in `text`.
            error: What stopped preparing, if anything did.
            malformed: The malformed events among the records.

        Returns:
            The prepared page.

        """
        # Only an unreadable timestamp is None; without one, no list to filter.
        readable = [t for t in timestamps if t is not None] if malformed else timestamps
        return cls(
            cursor=page.cursor,
            has_more=page.has_more,
            events=len(page.items),
            timestamps=timestamps,
            ids=ids,
            text=text,
            ends=ends,
            newest=max(readable, default=None),  # type: ignore[type-var] # no None left
            error=error,
            malformed=malformed,
            held_bytes=len(text) + PREPARED_RECORD_OVERHEAD * len(ends),
        )

    @property
    def empty(self) -> bool:
        """Whether the API sent no events (legal, even with `has_more` true)."""
        return not self.events

    def record_json(self) -> Iterator[tuple[str | None, memoryview]]:
        """Each record's timestamp and JSON, in order.

        Yields:
            (timestamp, a view of the record's JSON in `text`).

        """
        view = memoryview(self.text)
        start = 0
        for timestamp, end in zip(self.timestamps, self.ends, strict=True):
            yield timestamp, view[start:end]
            start = end + 1  # past the newline after each record

    def parsed(self) -> PreparedPage:
        """Return the page itself (ready as it is).

        Returns:
            This page.

        """
        return self


PageT = TypeVar("PageT", bound=Page | HeldPage | PreparedPage)
_SHORT_ARRAY = 64
_page_decoder = msgspec.json.Decoder(Page)
_held_page_decoder = msgspec.json.Decoder(HeldPage)
_items_decoder = msgspec.json.Decoder(list[dict[str, Any]])
_object_decoder = msgspec.json.Decoder(dict[str, Any])


def decode_page(body: bytes) -> Page:
    """Parse a data endpoint's body once, into items, cursor and has_more.

    Args:
        body: The raw response body.

    Returns:
        The page. Items stay as the API sent them (nested values untouched).

    Raises:
        RetriableAPIError: The body is not JSON (e.g. cut short): asking again may help.
        ApiResponseError: The body is JSON but not an events envelope.

    """
    return decode_json(_page_decoder, body, "an events page")


def decode_held_page(body: bytes) -> HeldPage:
    """Parse a data endpoint's envelope, checking the whole body, but keep the events as text.

    Args:
        body: The raw response body.

    Returns:
        The page, its events to be parsed by `HeldPage.parsed`.

    Raises:
        RetriableAPIError: The body is not JSON (e.g. cut short): asking again may help.
        ApiResponseError: The body is JSON but not an events envelope.

    """
    page = decode_json(_held_page_decoder, body, "an events page")
    if not body.isascii():
        # Leaving strings unparsed skips their UTF-8 check, which decode_page would make.
        decode_json(_utf8_check, body, "an events page")
    return page


def decode_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body (introspection).

    Args:
        body: The raw response body.

    Returns:
        The object.

    Raises:
        RetriableAPIError: The body is not JSON (e.g. cut short).
        ApiResponseError: The body is JSON but not an object.

    """
    return decode_json(_object_decoder, body, "a JSON object")


DecodedT_co = TypeVar("DecodedT_co", covariant=True)
DecodedT = TypeVar("DecodedT")


class _Decoder(Protocol[DecodedT_co]):
    """What `decode_json` needs of a decoder: msgspec's, or the UTF-8 check."""

    def decode(self, body: bytes, /) -> DecodedT_co: ...


class _Utf8Check:
    """Checks that a body is UTF-8, failing as a decoder would."""

    @staticmethod
    def decode(body: bytes, /) -> str:
        return body.decode()


_utf8_check = _Utf8Check()


def decode_json(decoder: _Decoder[DecodedT], body: bytes, expected: str) -> DecodedT:
    """Decode `body`, telling a broken body (worth asking again) from a wrong one (fatal).

    Args:
        decoder: A msgspec decoder (or anything with `decode(bytes)`).
        body: The raw response body.
        expected: What the body should be, for the message.

    Returns:
        What the decoder returns.

    Raises:
        RetriableAPIError: The body is not JSON or not UTF-8 (e.g. cut short).
        ApiResponseError: The body is JSON but not what was expected.

    """
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        msg = f"the API answered a body that is not {expected} ({exc})"
        raise ApiResponseError(msg) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec lets invalid UTF-8 inside a string escape as UnicodeDecodeError.
        msg = f"the API answered an incomplete or non-JSON body ({_first_line(exc)})"
        raise RetriableAPIError(msg) from None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


class EventsCursorPaginator(BaseAPIPaginator[RequestBody | None], Generic[PageT]):
    """Follows the body cursor of the data endpoints while `has_more` is true.

    The value is the next request body (`{"cursor": ...}`); it starts as None, meaning "the
    first body the caller chose". Each response is parsed once, here, and the page is kept for
    `has_more` and `get_next`.
    """

    def __init__(self, decode: Callable[[bytes], PageT] = decode_page) -> None:  # type: ignore[assignment] # the default is for Page
        """Start before the first request.

        Args:
            decode: Parses a body: `decode_page`, `decode_held_page` to keep events as text,
                or one that prepares the page (`EventStream.request_pages_ahead`).

        """
        super().__init__(None)
        self._decode: Callable[[bytes], PageT] = decode
        self._response: requests.Response | None = None
        self._page: PageT | None = None

    def page_of(self, response: requests.Response) -> PageT:
        """Parse a response's page, once per response.

        Args:
            response: A 200 response of a data endpoint.

        Returns:
            Its page.

        """
        if response is not self._response or self._page is None:
            page = self._decode(response.content)
            self._check_progress(page)
            self._page = page
            self._response = response
        return self._page

    def _check_progress(self, page: PageT) -> None:
        """Refuse a page that hands back the cursor it was asked with while `has_more` is true.

        Empty, it is legal ("the next request may still come back empty") but says nothing
        moved: it is answered like a server error, so the request is sent again after a growing
        wait and the run ends with one clear line if the API never moves (rather than ending
        the stream early and quietly). With events, following it would read them forever.

        Args:
            page: The page just decoded, for the request body `current_value`.

        Raises:
            RetriableAPIError: An empty page that did not move the cursor.
            ApiResponseError: Events with the very cursor that was sent.

        """
        if not page.has_more or self.current_value != {"cursor": page.cursor}:
            return
        if not page.empty:
            msg = (
                "the API answered events together with the cursor it was sent and has_more "
                "true; following it would read the same place forever"
            )
            raise ApiResponseError(msg)
        msg = "the API answered an empty page with has_more true without moving its cursor"
        raise RetriableAPIError(msg)

    def advance_past(self, page: PageT) -> None:
        """Advance past the page last returned by `page_of`.

        Args:
            page: That page.

        """
        if page is not self._page or self._response is None:
            msg = "advance_past() needs the page last parsed by this paginator"
            raise RuntimeError(msg)
        self.advance(self._response)

    @override
    def has_more(self, response: requests.Response) -> bool:
        return self.page_of(response).has_more

    @override
    def get_next(self, response: requests.Response) -> RequestBody | None:
        return {"cursor": self.page_of(response).cursor}

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        return self.has_more(response)


V3_PARAMETER_NAMES = {
    "current": ("max_page_size", "page_token"),
    "legacy": ("page_size", "next_page_token"),
}
"""The v3 beta's query parameters (`v3_parameter_names` -> page size, page token): renamed once
during the beta."""

_V3_TOKEN_PARAMETERS = frozenset(token for _, token in V3_PARAMETER_NAMES.values())


def continues_listing(request: requests.PreparedRequest) -> bool:
    """Tell whether a request continued a listing: a `{"cursor": ...}` body or a v3 page token.

    Args:
        request: The request an answer came to.

    Returns:
        True when a 4xx to it means the cursor or page token was refused.

    """
    body = request.body or b""
    if (body if isinstance(body, bytes) else body.encode()).startswith(b'{"cursor"'):
        return True
    return not _V3_TOKEN_PARAMETERS.isdisjoint(parse_qs(urlsplit(request.url or "").query))
