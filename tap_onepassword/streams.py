"""The tap's streams: three event endpoints, the token introspection, the opt-in v3 beta."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typing_extensions import override

from tap_onepassword import schemas
from tap_onepassword.api import introspection_path
from tap_onepassword.auditv3_stream import AuditEventsV3Stream
from tap_onepassword.events import EventStream, OnePasswordStream
from tap_onepassword.progress import Progress

if TYPE_CHECKING:
    import logging
    from collections.abc import Iterable

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_onepassword.run import SyncRun
    from tap_onepassword.settings import Account


class SignInAttemptsStream(EventStream):
    """Successful and failed attempts to sign in to the account (`/api/{v1,v2}/signinattempts`)."""

    name = "sign_in_attempts"
    feature = "signinattempts"
    schema = schemas.SIGN_IN_ATTEMPT.to_dict()
    docs = ("sign-in attempt", "https://www.1password.dev/events-api/reference/sign-in-attempt")


class ItemUsagesStream(EventStream):
    """Items in shared vaults that were accessed, modified or used (`/api/{v1,v2}/itemusages`)."""

    name = "item_usages"
    feature = "itemusages"
    schema = schemas.ITEM_USAGE.to_dict()
    docs = ("item usage", "https://www.1password.dev/events-api/reference/items-usage")


class AuditEventsStream(EventStream):
    """Actions team members performed in the account (`/api/{v1,v2}/auditevents`)."""

    name = "audit_events"
    feature = "auditevents"
    schema = schemas.AUDIT_EVENT.to_dict()
    docs = ("audit events", "https://www.1password.dev/events-api/reference/audit-events")


EVENT_STREAMS: tuple[type[EventStream], ...] = (
    SignInAttemptsStream,
    ItemUsagesStream,
    AuditEventsStream,
)
"""Every event stream, in the order the tap lists them: the one list to extend."""

EVENT_FEATURES: dict[str, str] = {
    stream.name: stream.feature  # type: ignore[misc] # a class attribute in every stream here
    for stream in EVENT_STREAMS
}
"""Each event stream's name and its token feature (the endpoint's last path segment)."""

OPT_IN_STREAMS: tuple[type[AuditEventsV3Stream], ...] = (AuditEventsV3Stream,)
"""Streams read only when selected (`selected_by_default = False`): the v3 beta."""


class IntrospectionStream(OnePasswordStream):
    """What each account's token may read: one record per account and run.

    The tap introspects every account before reading events (to skip streams whose feature the
    token lacks); this stream emits those same answers, so it costs no extra request.
    """

    name = "introspection"
    schema = schemas.INTROSPECTION.to_dict()
    primary_keys = ("account_name", "uuid")
    http_method = "GET"
    docs = ("reference", "https://developer.1password.com/docs/events-api/reference")

    def __init__(self, tap: Tap, run: SyncRun) -> None:
        """Create the stream, with one (empty) state for all accounts.

        Nothing of it is resumed, so no entry per account: a thousand accounts would put a
        thousand empty ones in every STATE message.

        Args:
            tap: The tap.
            run: What this run's streams share.

        """
        super().__init__(tap, run)
        self.state_partitioning_keys = ()

    @classmethod
    @override
    def path_for(cls, api_version: str) -> str:
        return introspection_path(api_version)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        account = self.account_of(context)
        assert context is not None
        access = self.run.partition_access(self, context)
        if access is None:  # the account failed in this run
            return
        progress = Progress(self.logger, self.name, account.name)
        with self.run.summary.partition(self, context, {}, progress):
            yield dict(access)
            progress.page_done(1, None)


V1_INTROSPECTION_KEYS = {"UUID": "uuid", "IssuedAt": "issued_at", "Features": "features"}
"""The deprecated v1 route answers in PascalCase; records use the v2 names."""


def introspection_record(
    answer: dict[str, Any], account: Account, logger: logging.Logger
) -> dict[str, Any]:
    """Make the API's introspection answer a record of `IntrospectionStream`.

    Args:
        answer: The API's answer, as sent.
        account: Whose token it describes.
        logger: Where unknown fields are named.

    Returns:
        The record (v2 field names, `features` always a list, `account_name` added).

    """
    record = {V1_INTROSPECTION_KEYS.get(key, key): value for key, value in answer.items()}
    known = IntrospectionStream.schema["properties"]
    unknown = sorted(key for key in record if key not in known)
    if unknown:
        logger.warning(
            "introspection: the API sent field(s) this tap does not know: %s; left out",
            ", ".join(unknown),
        )
    record = {key: value for key, value in record.items() if key in known}
    features = record.get("features")
    record["features"] = [str(f) for f in features] if isinstance(features, list) else []
    record["account_name"] = account.name
    return record
