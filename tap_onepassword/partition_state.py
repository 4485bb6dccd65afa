"""What the state of one stream and account holds: what the next run needs, and no more.

A STATE message holds every stream and account, so each byte per partition is paid a thousand
times over by a managed service provider's run. A partition's state holds:

- `cursor`: the API's cursor after the last page emitted whole;
- `cursor_endpoint`: the endpoint that made it (a cursor of v1 is not sent to v2);
- `cursor_end_date`: the `end_date` the cursor was made under, only when one is set (such a
  cursor never serves later events);
- `replication_key` and `replication_key_value`: the newest event emitted, the SDK's bookmark,
  kept by the tap for whole pages only; a rejected cursor is answered by reading again from
  there minus `lookback_minutes`.

Earlier versions also kept the newest event as `cursor_max_timestamp` (their SDK bookmark could
run ahead within a page) and a null `cursor_end_date`; such states are read as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


class StoredPartitions:
    """Finds a partition's stored state by its context, without a scan per partition.

    Planning read-ahead asks for every partition's stored state: scanning the list each time
    cost a thousand accounts a million comparisons per stream.
    """

    def __init__(self) -> None:
        """Start with no index; it is built on first use and when the list changes."""
        self._key: tuple[int, int] | None = None
        self._by_context: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}

    def of(self, partitions: list[Any], context: Mapping[str, Any]) -> dict[str, Any]:
        """Return the stored state of the partition `context` names, or an empty dict.

        Args:
            partitions: The stream's stored `partitions` list.
            context: The partition context.

        Returns:
            The first entry whose `context` equals `context` (read only), or {}.

        """
        key = (id(partitions), len(partitions))
        if key != self._key:
            self._key, self._by_context = key, {}
            for entry in partitions:
                stored = entry.get("context") if isinstance(entry, dict) else None
                if isinstance(stored, dict) and all(isinstance(v, str) for v in stored.values()):
                    self._by_context.setdefault(tuple(sorted(stored.items())), entry)
        found = self._by_context.get(tuple(sorted(context.items())), {})
        return found if found.get("context") == context else {}


def newest_emitted(state: dict[str, Any]) -> str | None:
    """Return the newest event timestamp the partition's state says was emitted, if any.

    Args:
        state: A partition's state.

    Returns:
        The normalised timestamp, or None.

    """
    newest = state.get("cursor_max_timestamp") or state.get("replication_key_value")
    return newest if isinstance(newest, str) else None


def commit(  # noqa: PLR0913 - the partition's state and what a whole page changes in it
    state: dict[str, Any],
    *,
    cursor: str,
    endpoint: str,
    end_date: str | None,
    replication_key: str,
    newest: str | None,
) -> None:
    """Record in the partition's state that a page was emitted whole.

    Args:
        state: The partition's writable state.
        cursor: The cursor the page's answer carried.
        endpoint: The endpoint's path.
        end_date: The `end_date` bound (normalised), or None.
        replication_key: The stream's replication key.
        newest: Largest normalised timestamp emitted from the page, if any.

    """
    previous = newest_emitted(state)
    state.pop("cursor_max_timestamp", None)
    state["cursor"] = cursor
    state["cursor_endpoint"] = endpoint
    if end_date is None:
        state.pop("cursor_end_date", None)
    else:
        state["cursor_end_date"] = end_date
    if newest is None or (previous is not None and previous >= newest):
        newest = previous
    if newest is not None:
        state["replication_key"] = replication_key
        state["replication_key_value"] = newest
