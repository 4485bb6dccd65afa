"""What every event stream declares: its token feature, its endpoint, its bookmark in API order.

The v1/v2 event streams (`events.EventStream`, resumed by the API's cursor) and the v3 beta
(`auditv3_stream`, resumed from insertion time) page and resume differently, but they declare
the same things: the token feature that lets a token read them (a token without it is skipped,
in `SyncRun.partition_access`), an endpoint named after that feature, and a bookmark that
follows the order in which the API took the events in. `EventFeed` declares them once.
"""

from __future__ import annotations

from typing import ClassVar

from singer_sdk import Stream
from typing_extensions import override


class EventFeed(Stream):
    """Stream mix-in: one token feature's events, listed by the API in the order it took them in."""

    feature: ClassVar[str]
    """The token feature and the endpoint's last path segment, e.g. `signinattempts`."""

    API_VERSION: ClassVar[str | None] = None
    """The endpoint's own API version, or None to follow the `api_version` setting (v1, v2)."""

    MAX_FALLBACKS: ClassVar[int] = 10
    """Rejected cursors (v3: page tokens) answered by reading again, per account and run."""

    @property
    @override
    def is_sorted(self) -> bool:
        # The tap resumes in the order the API took the events in (its cursor, or v3's
        # insertion time), so an interrupted run resumes exactly; the SDK then keeps its
        # bookmark in plain state (no "progress markers" that are wiped on restart).
        return True

    @property
    @override
    def check_sorted(self) -> bool:
        # Not checked per record: event times do not increase monotonically (late events
        # arrive with older ones), and v3's insertion order is the API's promise, whose
        # re-reads the stored boundary drops.
        return False

    @classmethod
    def path_for(cls, api_version: str) -> str:
        """Return the endpoint's path for an `api_version` setting (`v1` or `v2`).

        Args:
            api_version: The setting; ignored by an endpoint with an `API_VERSION` of its own.

        Returns:
            `/api/{version}/{feature}`.

        """
        return f"/api/{cls.API_VERSION or api_version}/{cls.feature}"
