"""Audit events v3 (beta): its pages, records that survive an evolving schema, and the resume point.

1Password documents of a v3 event only its `insert_time` and its dotted `action`; every other
key is unknown to us and may change during the beta. So a record keeps the whole event as
sent (`event`) and adds typed columns for what is documented or can be derived from it.

A run resumes from the boundary it stored: the insertion time of the last emitted event and
the ids emitted at that instant. `start_time` is exclusive, so the next run asks from the
whole second before that instant and drops what it already emitted (everything inserted
before the instant, and the stored ids at it): nothing skipped, nothing repeated. This relies
on the API listing events in insertion order, as its polling advice implies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from tap_onepassword.errors import ApiResponseError
from tap_onepassword.pages import decode_json
from tap_onepassword.timestamps import normalise_timestamp, parse_timestamp

ID_FIELDS = ("id", "uuid", "event_id")
"""Where an event's own id may be, first found wins (the beta's key name is not documented)."""

EVENT_TIME_FIELDS = ("timestamp", "event_time", "time", "occurred_at")
"""Where the time the event happened may be, first found wins (not documented either)."""

KNOWN_FIELDS = frozenset(
    {"insert_time", "action", "actor", "targets", "context", "account_uuid"}
    | set(ID_FIELDS)
    | set(EVENT_TIME_FIELDS)
)
"""Top-level keys the columns are drawn from; any other is kept in `event` and reported."""

SURROGATE_PREFIX = "sha256:"

IDS_KEY = "ids_at_insert_time"
"""Partition state: the ids emitted at the stored insertion time (`replication_key_value`)."""


class V3Page(msgspec.Struct, frozen=True):
    """One answer of `GET /api/v3/auditevents`, in the current or the beta's earlier form."""

    audit_events: list[dict[str, Any]]
    next_page_token: str | None = None
    has_more: bool | None = None
    """Only in the earlier form, which always sends a token and says here whether to follow."""

    @property
    def next_token(self) -> str | None:
        """The token to ask for the next page with, or None when the answer was the last."""
        if self.has_more is False:
            return None
        return self.next_page_token or None


_page_decoder = msgspec.json.Decoder(V3Page)


def decode_v3_page(body: bytes) -> V3Page:
    """Parse a v3 answer once.

    Args:
        body: The raw response body.

    Returns:
        The page; events stay as the API sent them.

    Raises:
        RetriableAPIError: The body is not JSON (e.g. cut short).
        ApiResponseError: The body is JSON but not a v3 page.

    """
    return decode_json(_page_decoder, body, "an audit events (v3) page")


def split_action(action: str | None) -> tuple[str | None, str | None, str | None]:
    """Split `target.attribute.verb` (attribute optional) into its parts.

    Args:
        action: The event's action, e.g. `service-account.token.create`.

    Returns:
        (target, attribute, verb); an action of more than three parts keeps the middle ones
        together as the attribute, one of a single part is a verb alone.

    """
    if not action:
        return None, None, None
    parts = action.split(".")
    if len(parts) == 1:
        return None, None, parts[0]
    attribute = ".".join(parts[1:-1]) or None
    return parts[0], attribute, parts[-1]


def event_id(event: dict[str, Any]) -> str:
    """Return the event's own id, else a surrogate that stays the same for the same content.

    Args:
        event: The event as sent.

    Returns:
        The first non-empty string of `ID_FIELDS`, else `sha256:` and the SHA-256 of the
        event's JSON with sorted keys.

    """
    for name in ID_FIELDS:
        value = event.get(name)
        if isinstance(value, str) and value:
            return value
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return SURROGATE_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def _event_time(event: dict[str, Any]) -> str | None:
    for name in EVENT_TIME_FIELDS:
        value = event.get(name)
        if isinstance(value, str):
            try:
                return normalise_timestamp(value)
            except ValueError:
                return None  # kept as sent in `event`
    return None


def _account_uuid(event: dict[str, Any]) -> str | None:
    context = event.get("context")
    account = context.get("account") if isinstance(context, dict) else None
    uuid = account.get("uuid") if isinstance(account, dict) else None
    if isinstance(uuid, str):
        return uuid
    top = event.get("account_uuid")
    return top if isinstance(top, str) else None


def shape_record(event: dict[str, Any], account_name: str, stream_name: str) -> dict[str, Any]:
    """Make a v3 event a record: typed columns beside the whole event.

    Args:
        event: The event as sent (kept whole, nested keys untouched).
        account_name: The configured account name.
        stream_name: For messages.

    Returns:
        The record.

    Raises:
        ApiResponseError: The event has no readable `insert_time` (the replication key).

    """
    try:
        insert_time = normalise_timestamp(event["insert_time"])
    except (KeyError, TypeError, ValueError):
        msg = (
            f"{stream_name}, account '{account_name}': an event has no RFC 3339 insert_time "
            f"({event.get('insert_time')!r:.60})"
        )
        raise ApiResponseError(msg) from None
    action = event.get("action") if isinstance(event.get("action"), str) else None
    target, attribute, verb = split_action(action)
    return {
        "account_name": account_name,
        "event_id": event_id(event),
        "insert_time": insert_time,
        "event_time": _event_time(event),
        "action": action,
        "action_target": target,
        "action_attribute": attribute,
        "action_verb": verb,
        "account_uuid": _account_uuid(event),
        "event": event,
    }


def unknown_fields(event: dict[str, Any]) -> list[str]:
    """Top-level keys the tap draws no column from (kept in `event`, worth a mention).

    Args:
        event: The event as sent.

    Returns:
        Their names, sorted.

    """
    return sorted(key for key in event if key not in KNOWN_FIELDS)


@dataclass
class Boundary:
    """What a partition emitted last: its insertion time and the ids emitted at that instant.

    `floor` is the first run's `start_date`: events inserted before it are not emitted.
    """

    insert_time: str | None = None
    ids: set[str] = field(default_factory=set)
    floor: str | None = None

    @classmethod
    def from_state(cls, state: dict[str, Any], floor: str | None) -> Boundary:
        """Read the boundary a previous run stored (an unreadable one counts as none).

        Args:
            state: The partition's state.
            floor: The start_date bound, used only when nothing was stored.

        Returns:
            The boundary.

        """
        stored = state.get("replication_key_value")
        ids = state.get(IDS_KEY)
        try:
            insert_time = normalise_timestamp(stored) if isinstance(stored, str) else None
        except ValueError:
            insert_time = None
        if insert_time is None:
            return cls(floor=floor)
        kept = {i for i in ids if isinstance(i, str)} if isinstance(ids, list) else set()
        return cls(insert_time, kept)

    def emitted(self, record: dict[str, Any]) -> bool:
        """Whether a record was emitted already (or lies before the first run's start).

        Args:
            record: A shaped record.

        Returns:
            True to drop it.

        """
        insert_time = record["insert_time"]
        if self.floor is not None and insert_time < self.floor:
            return True
        if self.insert_time is None:
            return False
        return insert_time < self.insert_time or (
            insert_time == self.insert_time and record["event_id"] in self.ids
        )

    def advance(self, record: dict[str, Any]) -> None:
        """Count a record as emitted.

        Args:
            record: The record just emitted.

        """
        insert_time = record["insert_time"]
        if self.insert_time is None or insert_time > self.insert_time:
            self.insert_time = insert_time
            self.ids = {record["event_id"]}
        elif insert_time == self.insert_time:
            self.ids.add(record["event_id"])

    def save(self, state: dict[str, Any]) -> None:
        """Store the boundary in the partition's state (no page token: it is not kept).

        Args:
            state: The partition's writable state.

        """
        if self.insert_time is None:
            return
        state["replication_key"] = "insert_time"
        state["replication_key_value"] = self.insert_time
        state[IDS_KEY] = sorted(self.ids)


def second_before(instant: datetime) -> str:
    """Return the latest whole second strictly before `instant`, as UTC `Z` text.

    `start_time` is exclusive: asking from here serves `instant` itself again.

    Args:
        instant: An aware datetime.

    Returns:
        `YYYY-MM-DDTHH:MM:SSZ`.

    """
    utc = instant.astimezone(timezone.utc)
    whole = utc.replace(microsecond=0)
    if whole == utc:
        whole -= timedelta(seconds=1)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


def second_after(instant: datetime) -> str:
    """Return the earliest whole second at or after `instant` (an exclusive bound), UTC `Z`.

    Args:
        instant: An aware datetime.

    Returns:
        `YYYY-MM-DDTHH:MM:SSZ`.

    """
    utc = instant.astimezone(timezone.utc)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def start_instant(boundary: Boundary, earliest: datetime) -> datetime:
    """Where a query starts: the boundary's instant, or the earliest the run may read.

    Args:
        boundary: What was emitted last (this run or a stored one).
        earliest: start_date (first run), clamped to the API's retention.

    Returns:
        The instant to serve from (inclusive); `second_before` makes it a `start_time`.

    """
    if boundary.insert_time is None:
        return earliest
    return max(parse_timestamp(boundary.insert_time), earliest)
