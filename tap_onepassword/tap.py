"""tap-onepassword: settings, the stream list, and what streams share within a run."""

from __future__ import annotations

import ctypes
import gc
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import click
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

from tap_onepassword.cli import OnePasswordCommand
from tap_onepassword.client import EventStream
from tap_onepassword.errors import ConfigError, TapOnePasswordError
from tap_onepassword.output import SingerOutput, StateOutput
from tap_onepassword.ratebudget import RateBudget
from tap_onepassword.readahead import ReadAhead
from tap_onepassword.settings import Account, Settings, load_settings, schema_errors
from tap_onepassword.streams import (
    AuditEventsStream,
    AuditEventsV3Stream,
    IntrospectionStream,
    ItemUsagesStream,
    SignInAttemptsStream,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import PurePath
    from types import FrameType

    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib import Catalog
    from singer_sdk.singerlib.encoding.base import GenericSingerWriter

    from tap_onepassword.pages import Page, PreparedPage

EVENT_STREAMS = (SignInAttemptsStream, ItemUsagesStream, AuditEventsStream)

GC_YOUNG_THRESHOLD = 10_000
"""New container objects between young collections while syncing (about one page's worth)."""

_M_ARENA_MAX = -8
"""glibc's `mallopt` parameter number for the most heaps (arenas) threads may use."""


def one_malloc_arena() -> bool:
    """Have every thread allocate from one C heap (glibc arena) from now on.

    Read-ahead's pages (response bodies, prepared records: hundreds of KiB each) are made on
    worker threads and freed on the main thread. glibc gives threads heaps of their own, and
    a freed block goes back to the heap it came from, so each worker's heap keeps the room of
    its largest moment: a 400,000-event run peaked some 30 MB higher. Python threads take
    turns holding the interpreter lock, so they seldom allocate at the same moment (only in
    C code that lets the lock go, such as TLS reads): one heap costs little waiting. The
    setting is process-wide and stays (a process runs one sync).

    Returns:
        Whether it was set (False where the C library is not glibc: nothing to tune).

    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_ARENA_MAX, 1))


class TapOnePassword(Tap):
    """Singer tap for the 1Password Events API: sign-in attempts, item usages, audit events and token introspection, for one or several accounts."""  # noqa: E501

    name = "tap-onepassword"
    # msgspec encoding, buffered until the next STATE (see output.py).
    message_writer_class = SingerOutput

    READ_AHEAD_BYTES: ClassVar[int] = 64 * 1024 * 1024
    """Page text held ahead for the partitions not being emitted (some 60,000 to 120,000
    events); 0 turns read-ahead off and reads one page at a time (see readahead.py)."""

    READ_AHEAD_WORKERS: ClassVar[int] = 16
    """Partitions paged at once by read-ahead."""

    # No BATCH: the tap writes STATE after each page it emitted, which with batch files would
    # checkpoint records that are not in a BATCH message yet.
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        capability for capability in Tap.capabilities if capability != PluginCapabilities.BATCH
    ]

    config_jsonschema = th.PropertiesList(
        th.Property(
            "token",
            th.StringType,
            secret=True,
            title="Events API token",
            description=(
                "The Events API bearer token of one account (1Password > Integrations > "
                "Events Reporting). Its account is named `default`. Set either this or "
                "`accounts`."
            ),
        ),
        th.Property(
            "accounts",
            th.ArrayType(
                th.ObjectType(
                    th.Property(
                        "name",
                        th.StringType,
                        required=True,
                        description=(
                            "A stable name for the account; it goes into every record "
                            "(`account_name`) and into state, so do not rename it."
                        ),
                    ),
                    th.Property(
                        "token",
                        th.StringType,
                        required=True,
                        secret=True,
                        description="The account's Events API bearer token.",
                    ),
                    th.Property(
                        "base_url",
                        th.StringType,
                        description="The account's Events API URL, when not the top-level one.",
                    ),
                    additional_properties=False,
                )
            ),
            secret=True,
            title="Accounts",
            description=(
                "Several accounts read in one run (e.g. a managed service provider's clients): "
                "a list of {name, token, base_url?}. Set either this or `token`."
            ),
        ),
        th.Property(
            "base_url",
            th.StringType,
            title="Base URL",
            description=(
                "Events API URL. Default: `https://` + the host named in the token's `aud` "
                "claim, which must be one of events.1password.com, events.ent.1password.com, "
                "events.1password.ca, events.1password.eu. An explicit value must be https://, "
                "or http:// to localhost only. With `accounts`, the default for accounts that "
                "set none."
            ),
        ),
        th.Property(
            "api_version",
            th.StringType,
            default="v2",
            allowed_values=["v2", "v1"],
            title="API version",
            description=(
                "Endpoint generation to read: v2 (adds MSP fields and actor_type) or v1. "
                "Switching re-reads from the last emitted event minus lookback_minutes."
            ),
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description=(
                "Lower bound of the first run (RFC 3339). Default and earliest: now minus 120 "
                "days, the API's retention. Later runs resume from their cursor."
            ),
        ),
        th.Property(
            "end_date",
            th.DateTimeType,
            title="End date",
            description="Upper bound (exclusive, RFC 3339). Default: none, read up to now.",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=1000),
            default=1000,
            title="Page size",
            description="Events per request (`limit` of reset requests), 1 to 1000.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType(exclusive_minimum=0),
            default=60,
            title="Request timeout",
            description="Seconds to wait for an answer to one request before retrying it.",
        ),
        th.Property(
            "max_requests_per_minute",
            th.IntegerType(minimum=1),
            default=600,
            title="Max requests per minute",
            description=(
                "Client-side budget per token, shared by all streams and accounts using it "
                "(the API allows 600)."
            ),
        ),
        th.Property(
            "max_requests_per_hour",
            th.IntegerType(minimum=1),
            default=30000,
            title="Max requests per hour",
            description=(
                "Client-side budget per token, like the per-minute one (the API allows 30000)."
            ),
        ),
        th.Property(
            "lookback_minutes",
            th.IntegerType(minimum=0),
            default=60,
            title="Lookback minutes",
            description=(
                "When no usable cursor is stored (the API rejected it, or api_version "
                "changed), re-read from the last emitted event minus this many minutes. "
                "Duplicates, never gaps; the primary key removes them."
            ),
        ),
        th.Property(
            "v3_parameter_names",
            th.StringType,
            default="current",
            allowed_values=["current", "legacy"],
            title="v3 parameter names",
            description=(
                "Audit events v3 (beta) only: `current` sends max_page_size and page_token; "
                "`legacy` sends the beta's earlier page_size and next_page_token. Answers "
                "are read in either form."
            ),
        ),
        th.Property(
            "ca_bundle",
            th.StringType,
            title="CA bundle",
            description=(
                "Path to a PEM file of CA certificates to trust (e.g. a corporate TLS proxy). "
                "TLS verification cannot be turned off."
            ),
        ),
    ).to_dict()

    def __init__(  # noqa: PLR0913 - the SDK's signature
        self,
        *,
        config: dict[str, Any] | PurePath | str | list[PurePath | str] | None = None,
        catalog: PurePath | str | dict[str, Any] | Catalog | None = None,
        state: PurePath | str | dict[str, Any] | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        setup_mapper: bool = True,
        message_writer: GenericSingerWriter[Any, Any] | None = None,
    ) -> None:
        """Create the tap and, unless told not to, check the config before anything else.

        Args:
            config: Config dict (or the SDK's deprecated file paths).
            catalog: Catalog to apply.
            state: State to resume from.
            parse_env_config: Read `TAP_ONEPASSWORD_*` environment variables too.
            validate_config: Check the config (off for discovery).
            setup_mapper: Set up stream maps.
            message_writer: Where Singer messages go.

        Raises:
            ConfigError: The config cannot work; one line says what to change.

        """
        self._budgets: dict[str, RateBudget] = {}
        self._budgets_lock = threading.Lock()
        self._access: dict[str, dict[str, Any]] | None = None
        self._access_lock = threading.Lock()
        self._read_ahead: ReadAhead | None = None
        self._read_ahead_planned = False
        try:
            super().__init__(
                config=config,
                catalog=catalog,
                state=state,
                parse_env_config=parse_env_config,
                validate_config=validate_config,
                setup_mapper=setup_mapper,
                message_writer=message_writer,
            )
        except ConfigValidationError:
            # The SDK's messages can quote values, and values can be tokens: say it by path.
            problems = schema_errors(self.config, self.config_jsonschema)
            raise ConfigError("invalid settings: " + "; ".join(problems)) from None
        # The SDK's own writer of STATE messages, only faster (see output.StateOutput);
        # `_state_writer` is pinned by tests/perf/test_sdk_private_members.py.
        self._state_writer = StateOutput(self.message_writer)  # type: ignore[assignment]
        if validate_config:
            _ = self.settings

    @cached_property
    def settings(self) -> Settings:
        """The checked settings (raises ConfigError on the first problem)."""
        return load_settings(self.config, self.config_jsonschema)

    @override
    def discover_streams(self) -> list[Stream]:
        # The SDK syncs streams by name; whichever event stream comes first introspects every
        # account before its first event request (see `access`).
        return [
            IntrospectionStream(self),
            *(stream(self) for stream in EVENT_STREAMS),
            AuditEventsV3Stream(self),
        ]

    @override  # type: ignore[misc] # `sync_all` is final only in the SDK's type hints
    def sync_all(self) -> None:
        # Objects alive now (modules, schemas, catalog, settings) live for the whole run:
        # frozen, the garbage collector stops walking them each time a page's worth of parsed
        # events triggers a collection (a fifth of the CPU per record otherwise). And parsing
        # one page makes thousands of short-lived dicts, which reference counting frees: with
        # the default threshold (700 new objects) a young collection ran several times a page.
        one_malloc_arena()
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        try:
            super().sync_all()
        finally:
            if self._read_ahead is not None:
                self._read_ahead.close()
            if isinstance(self.message_writer, SingerOutput):
                self.message_writer.flush()
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # SIGTERM/SIGINT: the SDK writes a last STATE and exits, from inside whatever the main
        # thread was doing, often a write to a slow target. Let that write finish first, so
        # the target reads whole lines (private SDK hook, pinned: tests/reliability's SIGTERM
        # test and tests/perf/test_sdk_private_members.py fail if it moves).
        writer = self.message_writer
        if isinstance(writer, SingerOutput):
            writer.when_idle(lambda: super(TapOnePassword, self)._handle_termination(signum, frame))
        else:
            super()._handle_termination(signum, frame)

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
        if self.READ_AHEAD_BYTES <= 0 or any(
            stream.ABORT_AT_RECORD_COUNT is not None for stream in self.streams.values()
        ):
            return None  # dry runs stop after a few records: nothing to read ahead for
        plan: list[tuple[EventStream, Context, dict[str, Any]]] = []
        reached = False
        for stream in self.streams.values():  # the order the SDK syncs them in
            if not isinstance(stream, EventStream) or not stream.selected:
                continue
            for context in stream.partitions or []:
                reached = reached or (stream is first and context == first_context)
                account = self.settings.account(context["account_name"])
                if not reached or stream.feature not in self.access(account)["features"]:
                    continue
                body = stream.planned_first_body(context, account)
                if body is not None:
                    plan.append((stream, context, body))
                    # Decided here, on the main thread, before workers ask it.
                    _ = stream.writes_records_unchanged
        if not plan:
            return None
        return ReadAhead(
            plan,
            page_size=self.settings.page_size,
            max_bytes=self.READ_AHEAD_BYTES,
            workers=self.READ_AHEAD_WORKERS,
        )

    def budget_for(self, account: Account) -> RateBudget:
        """Return the request budget of the account's token, shared by all accounts using it.

        Args:
            account: The account.

        Returns:
            Its token's budget.

        """
        with self._budgets_lock:
            budget = self._budgets.get(account.token_id)
            if budget is None:
                budget = RateBudget(
                    self.settings.max_requests_per_minute, self.settings.max_requests_per_hour
                )
                self._budgets[account.token_id] = budget
            return budget

    def access(self, account: Account) -> dict[str, Any]:
        """Tell what the account's token may read, by introspection (all accounts, once a run).

        All accounts are introspected at the first call, so a refused token stops the run
        before any events are read.

        Args:
            account: The account.

        Returns:
            Its introspection record (`features` always a list).

        """
        with self._access_lock:
            if self._access is None:
                # One round trip for all accounts, not one after another (an MSP has dozens);
                # the first failing account in config order is the one reported, as before.
                accounts = self.settings.accounts
                with ThreadPoolExecutor(max_workers=min(len(accounts), 16)) as pool:
                    answers = list(pool.map(self.introspection_stream.introspect, accounts))
                self._access = {a.name: answer for a, answer in zip(accounts, answers, strict=True)}
            return self._access[account.name]

    @property
    def introspection_stream(self) -> IntrospectionStream:
        """The stream that knows how to introspect."""
        stream = self.streams["introspection"]
        if not isinstance(stream, IntrospectionStream):  # pragma: no cover - fixed stream list
            raise TypeError(stream)
        return stream

    def check_accounts(self) -> bool:
        """`--test`: introspect each account and read one page of each permitted stream.

        Prints what works and what does not, in plain words.

        Returns:
            True when every account works.

        """
        working = True
        for account in self.settings.accounts:
            try:
                access = self.introspection_stream.introspect(account)
            except TapOnePasswordError as exc:
                click.echo(f"account '{account.name}': FAILED: {exc}")
                working = False
                continue
            features = ", ".join(access["features"]) or "none"
            click.echo(
                f"account '{account.name}' at {account.base_url}: token accepted "
                f"(integration {access.get('uuid')}, issued {access.get('issued_at')}); "
                f"features: {features}"
            )
            for stream in self.event_streams:
                working = self._check_stream(stream, account, access) and working
        click.echo("all accounts work" if working else "some checks FAILED (see above)")
        return working

    @property
    def event_streams(self) -> list[EventStream]:
        """The event streams, in the tap's order."""
        return [self.streams[stream.name] for stream in EVENT_STREAMS]  # type: ignore[misc]

    @staticmethod
    def _check_stream(stream: EventStream, account: Account, access: dict[str, Any]) -> bool:
        if stream.feature not in access["features"]:
            click.echo(f"  {stream.name}: skipped, the token lacks the '{stream.feature}' feature")
            return True
        body = {**stream.reset_body({}), "limit": 1}
        context = {"account_name": account.name}
        try:
            page = next(iter(stream.request_pages(context, body)))
        except TapOnePasswordError as exc:
            click.echo(f"  {stream.name}: FAILED: {exc}")
            return False
        found = "events found" if page.items else f"no events since {body['start_time']}"
        click.echo(f"  {stream.name}: OK, reading works ({found})")
        return True

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        if value != CliTestOptionValue.All.value:
            super().cb_test(ctx, param, value)
            return
        config = ctx.params["config"]
        tap = cls(config=config.config, parse_env_config=config.parse_env, validate_config=True)
        ctx.exit(0 if tap.check_accounts() else 1)

    @classmethod
    @override
    def get_singer_command(cls) -> click.Command:
        return OnePasswordCommand.wrapping(
            super().get_singer_command(), logger=cls.logger, settings_schema=cls.config_jsonschema
        )


if __name__ == "__main__":
    TapOnePassword.cli()
