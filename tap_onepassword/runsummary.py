"""What a run did, told in a few lines whatever the number of accounts.

Each stream and account (a partition) ends read, skipped (the token lacks the stream's
feature) or failed; `RunSummary` keeps one small outcome per partition and, at the end of the
run, logs a bounded summary: one line for the run, one per stream with its totals, and one
each for the partitions that failed, were skipped and lag most (a few named, the rest
counted; of the failed and skipped, one partition per account is named before a second of
any, so several accounts failing in every stream are all named when they fit). The same
figures go out as one JSON line (`RUN SUMMARY: {...}`) for an orchestrator to pick up, and
every partition's own outcome as a JSON line at DEBUG. While partitions end, a progress line
says at most every `PROGRESS_EVERY` seconds how far the run got.

A partition is read inside `RunSummary.partition`, which at its end logs the partition's
`http_request_count` and `event_lag_seconds` METRIC lines and keeps its outcome; an error that
leaves the block marks it failed. Code that goes on with the other accounts after one fails
catches the error outside that block, so the failure is counted; the partitions of an account
set aside before their turn (refused at introspection, or failed in an earlier partition) are
not read, and `RunSummary.partition_not_read` counts each as failed with the account's reason.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from singer_sdk import metrics

from tap_onepassword import partition_state
from tap_onepassword.accountmetrics import RequestTally, TapMetric, account_tags, log_point
from tap_onepassword.errors import TapOnePasswordError
from tap_onepassword.progress import describe_lag, name_some, seconds_behind

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from singer_sdk.helpers.types import Context

    from tap_onepassword.events import OnePasswordStream
    from tap_onepassword.progress import Progress

NAMED = 5
"""Partitions named in each line of the summary (failed, skipped, lagging most)."""
REASON_CHARS = 160
"""Longest reason quoted for a failed partition."""
PROGRESS_EVERY = 10.0
"""Seconds between run progress lines, at most one per partition that ends."""

Status = Literal["read", "skipped", "failed"]


@dataclass
class Outcome:
    """How one stream and account ended."""

    stream: str
    account: str
    status: Status
    records: int = 0
    pages: int = 0
    requests: int = 0
    seconds: float = 0.0
    newest: str | None = None
    """Newest event emitted for the partition (this run or before), normalised."""
    reason: str = ""


class RunSummary:
    """Outcomes of a run's partitions, and the lines that tell them."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        """Start a run with nothing done.

        Args:
            logger: Where the lines go.
            clock: Monotonic seconds (injectable for tests).
            now: Wall-clock time, for lags.

        """
        self.logger = logger
        self.outcomes: list[Outcome] = []
        self.planned = 0
        """Partitions the run means to read (0: unknown)."""
        self.budget_waits = 0.0
        """Seconds callers waited for request budgets, summed over threads."""
        self.stopped: str | None = None
        """Why the run stopped before its end, if it did."""
        self.requests = RequestTally()
        """Requests sent per stream and account (the API client counts them)."""
        self._skips_told: set[str] = set()
        self._clock = clock
        self._now = now
        self._started = clock()
        self._last_progress = self._started
        self._lock = threading.Lock()

    def add(self, outcome: Outcome) -> None:
        """Keep a partition's outcome; log it at DEBUG, and run progress when due.

        Args:
            outcome: How it ended.

        """
        with self._lock:
            self.outcomes.append(outcome)
        self.logger.debug("run detail: %s", json.dumps(asdict(outcome), sort_keys=True))
        if self._clock() - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = self._clock()
            done = len(self.outcomes)
            of = f" of {self.planned}" if self.planned else ""
            records = sum(o.records for o in self.outcomes)
            self.logger.info(
                "run progress: %d%s stream-accounts done, %d records so far, %.0f s; last: %s, "
                "account '%s'",
                done,
                of,
                records,
                self._clock() - self._started,
                outcome.stream,
                outcome.account,
            )

    @contextlib.contextmanager
    def partition(
        self,
        stream: OnePasswordStream,
        context: Context,
        state: dict[str, Any],
        progress: Progress,
    ) -> Iterator[None]:
        """Read a partition inside; its end is told: metrics, outcome, closing line.

        The partition's `http_request_count` and `event_lag_seconds` (from the newest event
        emitted so far, the state's bookmark) go out as METRIC lines. Its
        closing line is INFO when it ran long enough to log progress, else DEBUG, so a run of
        a thousand short accounts stays readable. A partition that fails is kept as failed,
        with the error's message, and the error goes on.

        Args:
            stream: The stream.
            context: The partition context.
            state: The partition's state.
            progress: Its counts.

        Yields:
            Nothing; the partition is read inside.

        """
        failure: str | None = None
        try:
            yield
        except TapOnePasswordError as exc:
            failure = str(exc)
            raise
        except Exception as exc:
            failure = type(exc).__name__  # its text is not checked for secrets
            raise
        finally:
            stream_name, account_name = stream.name, context["account_name"]
            sent = self._requests_sent(stream, context)
            newest = partition_state.newest_emitted(state)
            lag = seconds_behind(newest, self._now())
            if lag is not None:
                log_point(
                    "gauge", TapMetric.EVENT_LAG, round(lag, 3), account_tags(stream_name, context)
                )
            self.add(
                Outcome(
                    stream_name,
                    account_name,
                    "read" if failure is None else "failed",
                    records=progress.records,
                    pages=progress.pages,
                    requests=sent,
                    seconds=round(progress.seconds, 3),
                    newest=newest,
                    reason=failure or "",
                )
            )
            if failure is None:
                level = logging.INFO if progress.logged else logging.DEBUG
                stream.logger.log(level, "%s", progress.summary())

    def partition_not_read(self, stream: OnePasswordStream, context: Context, reason: str) -> None:
        """Keep a partition that was not read as failed: its account was set aside in this run.

        Its account's ERROR line is out, so nothing more is told at INFO: the partition counts
        as failed in the summary, with the reason; the requests it sent (a refused
        introspection's, for the introspection stream) go out as its `http_request_count`.

        Args:
            stream: The stream.
            context: The partition context.
            reason: Why its account was set aside.

        """
        sent = self._requests_sent(stream, context)
        self.add(
            Outcome(stream.name, context["account_name"], "failed", requests=sent, reason=reason)
        )

    def _requests_sent(self, stream: OnePasswordStream, context: Context) -> int:
        """Take the requests the partition sent, and log them as its `http_request_count`."""
        sent = self.requests.take(stream.name, context["account_name"])
        if sent:
            tags = account_tags(stream.name, context, endpoint=stream.path or "")
            log_point("counter", metrics.Metric.HTTP_REQUEST_COUNT, sent, tags)
        return sent

    def partition_skipped(  # noqa: PLR0913 - the skip, and who else the stream skips
        self,
        stream_name: str,
        account_name: str,
        *,
        logger: logging.Logger,
        feature: str,
        features: list[str],
        lacking: Callable[[], list[str]],
    ) -> None:
        """Keep a partition skipped for a missing feature; warn once per stream of all such.

        One warning line for the stream, whatever the number of accounts: the first few are
        named and the rest counted (each is named at DEBUG, and in the summary).

        Args:
            stream_name: The stream.
            logger: The stream's logger.
            feature: The token feature the stream needs.
            account_name: The account skipped.
            features: The features its token has.
            lacking: The names of every account whose token lacks the feature.

        """
        self.add(Outcome(stream_name, account_name, "skipped"))
        has = ", ".join(features) or "none"
        logger.debug(
            "%s, account '%s': skipped, the token lacks the '%s' feature (it has: %s)",
            stream_name,
            account_name,
            feature,
            has,
        )
        if stream_name in self._skips_told:
            return
        self._skips_told.add(stream_name)
        names = lacking()
        if len(names) <= 1:
            logger.warning(
                "%s, account '%s': skipped, the token lacks the '%s' feature (it has: %s). "
                "Issue a token with that feature to read these events.",
                stream_name,
                account_name,
                feature,
                has,
            )
        else:
            logger.warning(
                "%s, accounts %s: skipped, their tokens lack the '%s' feature. Issue tokens "
                "with that feature to read these events.",
                stream_name,
                name_some(names),
                feature,
            )

    def lag_of(self, outcome: Outcome) -> float | None:
        """Seconds between now and the partition's newest event (None: no event, or unreadable).

        Args:
            outcome: A partition's outcome.

        Returns:
            Seconds, or None.

        """
        return seconds_behind(outcome.newest, self._now())

    def figures(self) -> dict[str, Any]:
        """Give the summary as data: totals per stream, and the partitions worth a look.

        Returns:
            A JSON-ready dict whose size does not grow with the number of accounts.

        """
        streams: dict[str, dict[str, int]] = {}
        for outcome in self.outcomes:
            totals = streams.setdefault(
                outcome.stream,
                {"records": 0, "requests": 0, "read": 0, "skipped": 0, "failed": 0},
            )
            totals["records"] += outcome.records
            totals["requests"] += outcome.requests
            totals[outcome.status] += 1
        failed = [o for o in self.outcomes if o.status == "failed"]
        skipped = [o for o in self.outcomes if o.status == "skipped"]
        lags = [(lag, o) for o in self.outcomes if (lag := self.lag_of(o)) is not None]
        lags.sort(key=lambda pair: -pair[0])
        return {
            "stopped": (self.stopped or "")[:REASON_CHARS] or None,
            "seconds": round(self._clock() - self._started, 1),
            "accounts": len({o.account for o in self.outcomes}),
            "records": sum(o.records for o in self.outcomes),
            "streams": dict(sorted(streams.items())),
            "failed": len(failed),
            "failed_first": [
                {"stream": o.stream, "account": o.account, "reason": o.reason[:REASON_CHARS]}
                for o in one_per_account_first(failed)
            ],
            "skipped": len(skipped),
            "skipped_first": [
                {"stream": o.stream, "account": o.account} for o in one_per_account_first(skipped)
            ],
            "lag_most": [
                {"stream": o.stream, "account": o.account, "lag_seconds": round(lag)}
                for lag, o in lags[:NAMED]
            ],
            "budget_wait_seconds": round(self.budget_waits, 1),
        }

    def lines(self) -> list[str]:
        """Give the summary for people: a bounded number of lines of bounded length.

        Returns:
            The lines, the run's first.

        """
        figures = self.figures()
        stopped = f" (stopped early: {figures['stopped']})" if figures["stopped"] else ""
        lines = [
            (
                f"run summary{stopped}: {figures['records']} records from "
                f"{figures['accounts']} accounts in {figures['seconds']:.1f} s; "
                f"{figures['failed']} stream-accounts failed, "
                f"{figures['skipped']} skipped (token lacks the feature)"
            )
        ]
        for stream, totals in figures["streams"].items():
            lines.append(
                f"  {stream}: {totals['records']} records, {totals['requests']} requests; "
                f"{totals['read']} accounts read, {totals['skipped']} skipped, "
                f"{totals['failed']} failed"
            )
        if figures["failed"]:
            named = "; ".join(
                f"'{f['account']}' {f['stream']}: {f['reason']}" for f in figures["failed_first"]
            )
            lines.append(f"  failed ({figures['failed']}): {named}{_more(figures['failed'])}")
        if figures["skipped"]:
            named = ", ".join(f"'{s['account']}' {s['stream']}" for s in figures["skipped_first"])
            lines.append(
                f"  skipped, token lacks the feature ({figures['skipped']}): "
                f"{named}{_more(figures['skipped'])}"
            )
        if figures["lag_most"]:
            named = ", ".join(
                f"'{lag['account']}' {lag['stream']} {describe_lag(lag['lag_seconds'])}"
                for lag in figures["lag_most"]
            )
            lines.append(f"  newest event furthest behind now: {named}")
        if figures["budget_wait_seconds"]:
            lines.append(
                f"  waited {figures['budget_wait_seconds']:.0f} s in all for request budgets "
                "(summed over the threads that waited)"
            )
        lines.append(
            "  details: one 'run detail' line per stream and account at DEBUG; these figures "
            "as JSON in the RUN SUMMARY line"
        )
        return lines

    def log(self) -> None:
        """Log the summary lines, then the JSON line."""
        for line in self.lines():
            self.logger.info("%s", line)
        self.logger.info("RUN SUMMARY: %s", json.dumps(self.figures(), sort_keys=True))


def one_per_account_first(outcomes: list[Outcome]) -> list[Outcome]:
    """Pick the partitions to name: as many accounts as `NAMED` allows, in the order they came.

    An account that failed fails in every stream after, so in sync order its partitions could
    fill the list and hide the other accounts. Each account's first partition comes first,
    in the order the accounts first appear, then each one's second, and so on.

    Args:
        outcomes: Partitions of one kind (failed, or skipped), in the order they ended.

    Returns:
        At most `NAMED` of them.

    """
    by_account: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_account.setdefault(outcome.account, []).append(outcome)
    rounds = itertools.zip_longest(*by_account.values())
    return list(itertools.islice((o for row in rounds for o in row if o is not None), NAMED))


def _more(count: int) -> str:
    return f" and {count - NAMED} more" if count > NAMED else ""
