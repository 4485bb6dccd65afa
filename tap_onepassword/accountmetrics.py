"""The SDK's METRIC lines, one per stream and account, each tagged with its own account.

The SDK keeps one record counter and one sync timer per stream and only changes their
`context` tag from one partition to the next, so a stream read for many accounts logs one
`record_count` for all of them, tagged with the last account. The meters here log what was
counted under a context before that context is replaced, so summing a stream's `record_count`
lines by `account_name` gives exactly the records emitted for each account. The format is the
SDK's (`METRIC: {"type", "metric", "value", "tags"}` on the `singer_sdk.metrics` logger), so
parsers of SDK taps read these lines unchanged.

What the tap adds in the same format: `http_request_count` and `http_request_duration` per
stream and account (the SDK counts those in a request loop the tap does not use), and a gauge
`event_lag_seconds`: seconds between now and the newest event emitted for the stream and
account, as a connector's "events lag".

Streams get the meters by the `AccountMeters` mix-in. Counting stays cheap: the SDK calls
`increment` for every record, which here only adds (the SDK's also reads the clock); whether a
count is due is asked once per page.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, cast

from singer_sdk import Stream, metrics
from typing_extensions import override

if TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context


class TapMetric(str, enum.Enum):
    """Metrics this tap logs beside the SDK's own."""

    EVENT_LAG = "event_lag_seconds"


def log_point(
    metric_type: str, metric: metrics.Metric | TapMetric, value: float, tags: dict[str, Any]
) -> None:
    """Log one METRIC line in the SDK's format, on the SDK's metrics logger.

    Args:
        metric_type: `counter`, `timer` or `gauge`.
        metric: The metric.
        value: Its value.
        tags: Its tags (copied: a log handler may format the line later).

    """
    logger = metrics.get_metrics_logger()
    if logger.isEnabledFor(logging.INFO):  # the SDK's logging config may turn metrics off
        # Point only reads `metric.value`, so the tap's own metrics go through it too.
        point = metrics.Point(metric_type, cast("metrics.Metric", metric), value, dict(tags))
        metrics.log(logger, point)


def account_tags(stream_name: str, context: Context | None, **tags: object) -> dict[str, Any]:
    """Tags of a point about one stream and account, as the SDK's meters shape them.

    Args:
        stream_name: The stream.
        context: The partition context (`{"account_name": ...}`).
        tags: Further tags.

    Returns:
        `{"stream", "pid", "context", ...}`.

    """
    shaped: dict[str, Any] = {metrics.Tag.STREAM: stream_name, metrics.Tag.PID: os.getpid()}
    shaped.update(tags)
    if context:
        shaped[metrics.Tag.CONTEXT] = dict(context)
    return shaped


def log_request_duration(
    label: str, account_name: str, path: str, response: requests.Response
) -> None:
    """Log the SDK's `http_request_duration` point for one answer, tagged with its account.

    Args:
        label: The stream asking.
        account_name: The account asked.
        path: The endpoint.
        response: Its answer.

    """
    failed = response.status_code >= HTTPStatus.BAD_REQUEST
    tags = account_tags(
        label,
        {"account_name": account_name},
        endpoint=path,
        http_status_code=response.status_code,
        status=metrics.Status.FAILED if failed else metrics.Status.SUCCEEDED,
    )
    log_point("timer", metrics.Metric.HTTP_REQUEST_DURATION, response.elapsed.total_seconds(), tags)


class RequestTally:
    """Requests sent per stream and account, counted on any thread, taken at partition end."""

    def __init__(self) -> None:
        """Start with no requests."""
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def count(self, stream_name: str, account_name: str) -> None:
        """Count one request (retries included).

        Args:
            stream_name: The stream.
            account_name: The account.

        """
        key = (stream_name, account_name)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def take(self, stream_name: str, account_name: str) -> int:
        """Return the requests counted since the last take, and start again.

        Args:
            stream_name: The stream.
            account_name: The account.

        Returns:
            The count.

        """
        with self._lock:
            return self._counts.pop((stream_name, account_name), 0)


class AccountCounter(metrics.Counter):
    """The SDK's counter, logging each context's count under that context.

    A context's count is logged when the context changes or the counter exits, and during a
    long partition every `log_interval` seconds (asked per page: `log_if_due`). A context that
    counted nothing logs nothing: no account is named with records it did not emit.
    """

    @override
    def with_context(self, value: Context | None) -> None:
        if value != self.context:
            self.log_count()
        super().with_context(value)

    @override
    def increment(self, value: int = 1) -> None:
        # Called by the SDK for every record: an addition only.
        self.value += value

    def log_if_due(self) -> None:
        """Log the count so far when `log_interval` has passed since the last one."""
        if time.time() - self.last_log_time > self.log_interval:
            self.log_count()

    def log_count(self) -> None:
        """Log what was counted under the current context, if anything, and start again."""
        if self.value:
            log_point("counter", self.metric, self.value, self.tags)
        self.value = 0
        self.last_log_time = time.time()

    @override
    def exit(self) -> None:
        self.log_count()


class AccountTimer(metrics.Timer):
    """The SDK's timer, logging each context's duration under that context."""

    @override
    def with_context(self, value: Context | None) -> None:
        if value != self.context:
            if self.context is not None:
                self.log_duration(succeeded=True)
            self.start_time = time.time()
        super().with_context(value)

    def log_duration(self, *, succeeded: bool) -> None:
        """Log the time since the current context began, under that context.

        Args:
            succeeded: Whether the partition ended without an error.

        """
        tags = dict(self.tags)
        tags.setdefault(
            metrics.Tag.STATUS, metrics.Status.SUCCEEDED if succeeded else metrics.Status.FAILED
        )
        log_point("timer", self.metric, self.elapsed(), tags)

    @override
    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.log_duration(succeeded=exc_type is None)


class AccountMeters(Stream):
    """Stream mix-in: the SDK's record counter and sync timer, per account."""

    RECORD_COUNT_EVERY: ClassVar[float] = metrics.DEFAULT_LOG_INTERVAL
    """Seconds between `record_count` lines of one account during a long partition."""

    record_counter: AccountCounter
    """The record counter of the sync under way (the SDK makes one per stream sync)."""

    @override
    def get_record_counter(
        self, *, endpoint: str | None = None, log_interval: float | None = None
    ) -> AccountCounter:
        tags: dict[str, Any] = {metrics.Tag.STREAM: self.name}
        if endpoint:
            tags[metrics.Tag.ENDPOINT] = endpoint
        every = self.RECORD_COUNT_EVERY if log_interval is None else log_interval
        self.record_counter = AccountCounter(metrics.Metric.RECORD_COUNT, tags, log_interval=every)
        return self.record_counter

    @override
    def get_sync_timer(self) -> AccountTimer:
        return AccountTimer(metrics.Metric.SYNC_DURATION, {metrics.Tag.STREAM: self.name})

    def count_records(self, count: int) -> None:
        """Count `count` records written besides those the SDK counted, one per item it saw.

        Args:
            count: The records.

        """
        self.record_counter.increment(count)

    def log_record_count_if_due(self) -> None:
        """Log the account's record count so far when its interval has passed (once a page)."""
        counter = getattr(self, "record_counter", None)
        if counter is not None:
            counter.log_if_due()
