"""What one sync run shares: settings, the API client, introspection answers, read-ahead, summary.

The tap makes one `SyncRun` and gives it to every stream. Streams ask it what a token may read
(`access`: every account introspected once, together, before the first event request) and for
a partition's pages read ahead (`pages_ahead`); the API client it holds keeps one request budget
per token for all streams. `syncing` surrounds the sync: it warns of tokens close to their
expiry, tunes the process (one C heap, a calmer garbage collector, undone afterwards; then the
run's summary is told), and at the end reports the run's `outcome`: with `accounts`, an account
that failed (`account_failures`) is set aside while the others are synced, and the run then
ends with an error naming it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from tap_onepassword.api import EventsApiClient
from tap_onepassword.errors import AccountUnauthorizedError, ApiResponseError, TapOnePasswordError
from tap_onepassword.eventfeed import EventFeed
from tap_onepassword.events import EventStream
from tap_onepassword.outcome import RunOutcome
from tap_onepassword.readahead import ReadAhead
from tap_onepassword.runsummary import RunSummary
from tap_onepassword.settings import load_settings
from tap_onepassword.streams import introspection_record
from tap_onepassword.tokens import expiry_warning

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from singer_sdk import Stream
    from singer_sdk.helpers.types import Context

    from tap_onepassword.events import OnePasswordStream
    from tap_onepassword.pages import Page, PreparedPage, RequestBody
    from tap_onepassword.settings import Account, Settings

GC_YOUNG_THRESHOLD = 10_000
"""New container objects between young collections while syncing (about one page's worth)."""

_M_ARENA_MAX = -8
"""glibc's `mallopt` parameter number for the most heaps (arenas) threads may use."""


def one_malloc_arena() -> bool:
    """Have every thread allocate from one C heap (glibc arena) from now on.

    Read-ahead's pages are made on worker threads and freed on the main thread. glibc gives
    threads heaps of their own, and a freed block goes back to the heap it came from, so each
    worker's heap keeps the room of its largest moment. Python threads take turns holding the
    interpreter lock, so they seldom allocate at the same moment: one heap costs little
    waiting. The setting is process-wide and stays (a process runs one sync).

    Returns:
        Whether it was set (False where the C library is not glibc: nothing to tune).

    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_ARENA_MAX, 1))


class SyncRun:
    """Settings, API client, introspection answers, read-ahead and summary of one run."""

    READ_AHEAD_BYTES: ClassVar[int] = 64 * 1024 * 1024
    """Page text held ahead for the partitions not being emitted (some 60,000 to 120,000
    events); 0 turns read-ahead off and reads one page at a time (see readahead.py)."""

    READ_AHEAD_WORKERS: ClassVar[int] = 16
    """Partitions paged at once by read-ahead."""

    def __init__(
        self,
        config: Mapping[str, Any],
        config_schema: dict[str, Any],
        *,
        user_agent: str,
        logger: logging.Logger,
        streams: Callable[[], Iterable[Stream]],
    ) -> None:
        """Describe the run; settings are checked on first use.

        Args:
            config: The tap's config.
            config_schema: The tap's config JSON schema.
            user_agent: The `User-Agent` of every request.
            logger: The tap's logger.
            streams: The tap's streams, in the order the SDK syncs them.

        """
        self._tap_config = config
        self._tap_config_schema = config_schema
        self._user_agent = user_agent
        self._tap_logger = logger
        self._sync_order = streams
        self._access: dict[str, dict[str, Any] | None] | None = None
        self.outcome = RunOutcome()
        """Failed accounts and re-served events of this run (`outcome.failed_accounts`: the
        accounts that failed, each with its reason, for a run summary)."""
        self._access_lock = threading.Lock()
        self._read_ahead: ReadAhead | None = None
        self._read_ahead_planned = False

    @cached_property
    def settings(self) -> Settings:
        """The checked settings (raises ConfigError on the first problem)."""
        return load_settings(self._tap_config, self._tap_config_schema)

    @cached_property
    def summary(self) -> RunSummary:
        """What the run's streams and accounts did, told at its end."""
        return RunSummary(self._tap_logger)

    @cached_property
    def client(self) -> EventsApiClient:
        """The API client every stream and read-ahead worker sends its requests through."""
        return EventsApiClient(
            self.settings,
            user_agent=self._user_agent,
            logger=self._tap_logger,
            tally=self.summary.requests,
        )

    def partition_access(
        self, stream: OnePasswordStream, context: Context
    ) -> dict[str, Any] | None:
        """Tell what the partition's token may read, or None when the stream does not read it.

        Every stream starts a partition here, so a partition left unread counts the same in
        each: one of an account set aside in this run (refused at introspection, or failed in
        an earlier partition; its ERROR line is out) as failed, with the account's reason; one
        of an event stream whose feature the token lacks as skipped (`skip_partition`).

        Args:
            stream: The stream.
            context: Its partition context.

        Returns:
            The account's introspection record, or None: the partition is not read.

        """
        account = stream.account_of(context)
        access = self.access(account)
        if access is None:
            self.summary.partition_not_read(stream, context, self._set_aside_because(account))
            return None
        if isinstance(stream, EventFeed) and stream.feature not in access["features"]:
            self.skip_partition(stream, account)
            return None
        return access

    def _set_aside_because(self, account: Account) -> str:
        """Say why a partition of an account set aside in this run is not read."""
        why = self.outcome.failed_accounts[account.name]
        if self._access is not None and self._access.get(account.name) is None:
            for named in (
                f"account '{account.name}': ",
                f"introspection, account '{account.name}': ",
            ):
                why = why.removeprefix(named)
            return f"introspection failed: {why}"
        return f"not read, the account failed earlier in this run: {why}"

    def skip_partition(self, stream: EventFeed, account: Account) -> None:
        """Keep a partition whose token lacks the stream's feature as skipped, and say so.

        Every stream of a token feature's events skips through here, so a skip reads and
        counts the same in each (one warning per stream, the summary's skipped partitions).

        Args:
            stream: The event stream (v1/v2, or the v3 beta).
            account: The account whose token lacks its feature.

        """
        self.summary.partition_skipped(
            stream.name,
            account.name,
            logger=stream.logger,
            feature=stream.feature,
            features=(self.access(account) or {"features": []})["features"],
            lacking=lambda: [
                other.name
                for other in self.settings.accounts
                if stream.feature
                not in (self.access(other) or {"features": [stream.feature]})["features"]
            ],
        )

    @property
    def isolates_accounts(self) -> bool:
        """Whether one account's failure leaves the others going (with `accounts`, not `token`)."""
        return bool(self._tap_config.get("accounts"))

    @contextlib.contextmanager
    def account_failures(self, account: Account) -> Iterator[None]:
        """Set the account aside if what runs inside fails on the API's side (with `accounts`).

        Its token refused, its retries spent, its cursor beyond recovery: one ERROR line names
        it and the reason, its other streams are skipped, and the run goes on with the other
        accounts (what it emitted keeps its state). With a single `token`, the failure ends
        the run as it is.

        Args:
            account: The account being synced inside.

        Yields:
            Nothing.

        """
        try:
            yield
        except (ApiResponseError, AccountUnauthorizedError) as exc:
            if not self.isolates_accounts:
                raise
            self.outcome.fail(account.name, str(exc), self._tap_logger)

    def access(self, account: Account) -> dict[str, Any] | None:
        """Tell what the account's token may read, by introspection (all accounts, once a run).

        All accounts are introspected at the first call. With a single `token`, a refused
        token stops the run before any events are read; with `accounts`, an account whose
        introspection fails is set aside and the others go on.

        Args:
            account: The account.

        Returns:
            Its introspection record (`features` always a list), or None for an account that
            failed in this run.

        """
        with self._access_lock:
            if self._access is None:
                # One round trip for all accounts, not one after another (an MSP has dozens).
                accounts = self.settings.accounts
                with ThreadPoolExecutor(max_workers=min(len(accounts), 16)) as pool:
                    answers = list(pool.map(self._introspect_or_failure, accounts))
                self._access = {}
                for each, answer in zip(accounts, answers, strict=True):
                    if not isinstance(answer, TapOnePasswordError):
                        self._access[each.name] = answer
                    elif self.isolates_accounts:
                        self.outcome.fail(each.name, str(answer), self._tap_logger)
                        self._access[each.name] = None
                    else:
                        raise answer  # the first failing account in config order
            return None if self.outcome.failed(account.name) else self._access[account.name]

    def _introspect_or_failure(self, account: Account) -> dict[str, Any] | TapOnePasswordError:
        try:
            return self.introspect(account)
        except TapOnePasswordError as exc:
            return exc

    def introspect(self, account: Account) -> dict[str, Any]:
        """Ask the API now what the account's token may read.

        Args:
            account: The account.

        Returns:
            Its introspection record.

        """
        return introspection_record(self.client.introspect(account), account, self._tap_logger)

    def pages_ahead(
        self, stream: EventStream, context: Context
    ) -> Iterator[Page | PreparedPage] | None:
        """Return the partition's pages as read ahead, or None to read them one at a time.

        The first call, from the first event partition the SDK syncs, starts read-ahead for it
        and every partition after it.

        Args:
            stream: The event stream.
            context: Its partition context.

        Returns:
            The partition's pages in order, or None when read-ahead does not cover it.

        """
        if not self._read_ahead_planned:
            self._read_ahead_planned = True
            self._read_ahead = self._plan_read_ahead(stream, context)
        return self._read_ahead.take(stream, context) if self._read_ahead else None

    def _plan_read_ahead(self, first: EventStream, first_context: Context) -> ReadAhead | None:
        streams = list(self._sync_order())  # the order the SDK syncs them in
        if self.READ_AHEAD_BYTES <= 0 or any(
            stream.ABORT_AT_RECORD_COUNT is not None for stream in streams
        ):
            return None  # dry runs stop after a few records: nothing to read ahead for
        plan: list[tuple[EventStream, Context, RequestBody]] = []
        reached = False
        for stream in streams:
            if not isinstance(stream, EventStream) or not stream.selected:
                continue
            for context in stream.partitions or []:
                reached = reached or (stream is first and context == first_context)
                account = self.settings.account(context["account_name"])
                access = self.access(account) if reached else None
                if access is None or stream.feature not in access["features"]:
                    continue
                body = stream.planned_first_body(context, account)
                if body is not None:
                    plan.append((stream, context, body))
                    # Decided here, on the main thread, before workers ask them.
                    _ = stream.writes_records_unchanged, stream.event_records
        if not plan:
            return None
        return ReadAhead(
            plan,
            page_size=self.settings.page_size,
            max_bytes=self.READ_AHEAD_BYTES,
            workers=self.READ_AHEAD_WORKERS,
            round_trip=self.client.last_round_trip,
        )

    @contextlib.contextmanager
    def syncing(self) -> Iterator[None]:
        """Surround the sync: expiry warnings first, the process tuned, the outcome at the end.

        Yields:
            Nothing; the sync runs inside.

        Raises:
            AccountsFailedError: Some accounts failed (the others were synced).

        """
        for account in self.settings.accounts:
            warning = expiry_warning(account.name, account.expires_at)
            if warning:
                self._tap_logger.warning("%s", warning)
        with self.tuned():
            yield
        if any(isinstance(s, EventStream) and s.selected for s in self._sync_order()):
            self.outcome.log_reserved(self._tap_logger)
        self.outcome.raise_if_failed(len(self.settings.accounts))

    @contextlib.contextmanager
    def tuned(self) -> Iterator[None]:
        """Tune the process for the sync while it runs; stop read-ahead and tell the summary after.

        Objects alive when the sync starts (modules, schemas, catalog, settings) live for the
        whole run: frozen, the garbage collector stops walking them each time a page's worth of
        parsed events triggers a collection. Parsing a page makes thousands of short-lived
        dicts, which reference counting frees: with the default threshold (700 new objects) a
        young collection would run several times a page.

        Yields:
            Nothing; the sync runs inside.

        """
        one_malloc_arena()
        selected = sum(1 for stream in self._sync_order() if stream.selected)
        self.summary.planned = selected * len(self.settings.accounts)
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        try:
            with self.client.slow_answers.watched():
                yield
        except TapOnePasswordError as exc:
            self.summary.stopped = str(exc)
            raise
        except BaseException as exc:
            self.summary.stopped = type(exc).__name__  # its text is not checked for secrets
            raise
        finally:
            if self._read_ahead is not None:
                self._read_ahead.close()
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            self.summary.budget_waits = self.client.budget_waits()
            self.summary.log()
