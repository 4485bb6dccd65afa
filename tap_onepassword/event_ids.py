"""Event identity: a stable key for an event sent without one; the ids a partition's tail held.

Every record is keyed by (`account_name`, `uuid`). An event the API sends without a usable
`uuid` gets a surrogate made from its content, so the same event gets the same key on every
run and a loader's upsert keeps one copy of it.

Some APIs serve a final page again when its cursor is re-posted (the cursor points at the
page's first event, not past its last). The tap re-posts the final cursor on every run, since
that is how late events arrive, so it remembers which events that final page held: short
hashes of their ids, stored with the cursor in state (`TailIds`). On the next page of the
partition, events whose id is remembered are dropped as already emitted. The memory is the
ids of one page, never more: bounded by `page_size`, not by history.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

SURROGATE_PREFIX = "surrogate-"
"""Starts every surrogate key, so it can never equal an id the API assigned."""

ID_HASH_BYTES = 6
"""Bytes kept of each remembered id's hash: 48 bits. A new event is wrongly taken for a
remembered one with a chance of 1 in 2**48 / (ids remembered), at most 1 in 281 billion
for a page of 1,000."""


def surrogate_uuid(event: dict[str, Any]) -> str:
    """Make a stable key for an event the API sent without a usable `uuid`.

    Args:
        event: The event as the API sent it (before the tap changes anything in it).

    Returns:
        `surrogate-` and the first 26 base32 characters of the SHA-256 of the event's JSON
        with sorted keys and no spaces: the same event gives the same key on every run.

    """
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).digest()
    return SURROGATE_PREFIX + base64.b32encode(digest).decode()[:26]


def id_hash(event_id: str) -> bytes:
    """Hash an event id to the few bytes the tail memory keeps of it.

    Args:
        event_id: The record's `uuid`.

    Returns:
        `ID_HASH_BYTES` bytes of its BLAKE2b hash.

    """
    return hashlib.blake2b(event_id.encode(), digest_size=ID_HASH_BYTES).digest()


class TailIds:
    """The ids of the page a partition's stored cursor came from, as short hashes."""

    __slots__ = ("_hashes",)

    def __init__(self, hashes: frozenset[bytes] = frozenset()) -> None:
        """Remember these hashes (see `id_hash`).

        Args:
            hashes: The hashes.

        """
        self._hashes = hashes

    @classmethod
    def of(cls, event_ids: Iterable[str]) -> TailIds:
        """Remember these ids.

        Args:
            event_ids: The ids of a page's events.

        Returns:
            The memory.

        """
        return cls(frozenset(id_hash(event_id) for event_id in event_ids))

    @classmethod
    def load(cls, stored: object) -> TailIds:
        """Read the memory from state; anything unreadable remembers nothing.

        Forgetting can only let an event through twice (the primary key removes it
        downstream), never drop one.

        Args:
            stored: The state's value (`TailIds.dump`'s text, or absent).

        Returns:
            The memory.

        """
        if not isinstance(stored, str) or not stored:
            return cls()
        try:
            raw = base64.urlsafe_b64decode(stored + "=" * (-len(stored) % 4))
        except ValueError:
            return cls()
        if len(raw) % ID_HASH_BYTES:
            return cls()
        size = ID_HASH_BYTES
        return cls(frozenset(raw[start : start + size] for start in range(0, len(raw), size)))

    def dump(self) -> str | None:
        """Write the memory for state: the hashes, sorted, as one base64url text.

        Returns:
            About 8 characters per id (8,000 for a page of 1,000), or None when empty.

        """
        if not self._hashes:
            return None
        return base64.urlsafe_b64encode(b"".join(sorted(self._hashes))).rstrip(b"=").decode()

    def __bool__(self) -> bool:
        """Whether anything is remembered."""
        return bool(self._hashes)

    def __len__(self) -> int:
        """How many ids are remembered."""
        return len(self._hashes)

    def seen(self, event_id: str) -> bool:
        """Tell whether an event with this id was on the remembered page.

        Args:
            event_id: The record's `uuid`.

        Returns:
            True when it was (a re-served event).

        """
        return id_hash(event_id) in self._hashes
