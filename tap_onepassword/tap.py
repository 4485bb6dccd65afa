"""tap-onepassword: its settings, its streams, and the few SDK hooks it needs."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from typing_extensions import override

from tap_onepassword.errors import ConfigError
from tap_onepassword.fastpath import FastPathTap
from tap_onepassword.output import SingerOutput
from tap_onepassword.run import SyncRun
from tap_onepassword.settings import schema_errors
from tap_onepassword.streams import EVENT_STREAMS, OPT_IN_STREAMS, IntrospectionStream

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import PurePath

    from singer_sdk.singerlib import Catalog
    from singer_sdk.singerlib.encoding.base import GenericSingerWriter

    from tap_onepassword.auditv3_stream import AuditEventsV3Stream
    from tap_onepassword.events import EventStream
    from tap_onepassword.settings import Settings


class TapOnePassword(FastPathTap):
    """Singer tap for the 1Password Events API: sign-in attempts, item usages, audit events and token introspection, for one or several accounts."""  # noqa: E501

    name = "tap-onepassword"
    # msgspec encoding, buffered until the next STATE (see output.py).
    message_writer_class = SingerOutput

    # No BATCH, and `batch_config` is refused (settings.py): the tap writes STATE after each
    # page it emitted, which with batch files would checkpoint records that are not in a BATCH
    # message yet, and batch files did not make `meltano run` into target-postgres faster.
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
                "Lower bound (inclusive, RFC 3339, to the nanosecond): events before it are "
                "never emitted, on any run. Default and earliest: now minus 120 days, the API's "
                "retention. Later runs resume from their cursor."
            ),
        ),
        th.Property(
            "end_date",
            th.DateTimeType,
            title="End date",
            description=(
                "Upper bound (exclusive, RFC 3339, to the nanosecond). Default: none, read up "
                "to now."
            ),
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
            description=(
                "Seconds one request may take, headers and whole body, before it is retried "
                "(a server sending its answer slowly is cut off too)."
            ),
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
            "state_interval_seconds",
            th.IntegerType(minimum=0),
            default=5,
            title="State interval seconds",
            description=(
                "Least seconds between two STATE messages (each holds every stream and account); "
                "one more goes out at the end of the run. A run killed in between reads again "
                "what it emitted since the last STATE. 0 writes one after every page."
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
        th.Property(
            "strict_events",
            th.BooleanType,
            default=False,
            title="Strict events",
            description=(
                "Stop the run at an event without a `uuid` or with an unreadable `timestamp`. "
                "Default (false): emit it anyway, with a surrogate `uuid` made from its content "
                "or the text in `unreadable_timestamp`, and one warning per stream and account."
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
        if validate_config:
            _ = self.settings

    @cached_property
    def run(self) -> SyncRun:
        """What this run's streams share: settings, API client, introspection, read-ahead."""
        return SyncRun(
            self.config,
            self.config_jsonschema,
            user_agent=f"tap-onepassword/{self.plugin_version}",
            logger=self.logger,
            streams=lambda: self.streams.values(),  # noqa: PLW0108 - not discovered yet
        )

    @property
    def settings(self) -> Settings:
        """The checked settings (raises ConfigError on the first problem)."""
        return self.run.settings

    @override
    def discover_streams(self) -> list[Stream]:
        # The SDK syncs streams by name; whichever event stream comes first introspects every
        # account before its first event request (see SyncRun.access).
        return [
            IntrospectionStream(self, self.run),
            *(stream(self, self.run) for stream in EVENT_STREAMS),
            *(stream(self, self.run) for stream in OPT_IN_STREAMS),
        ]

    @property
    def event_streams(self) -> list[EventStream]:
        """The event streams, in the tap's order."""
        return [self.streams[stream.name] for stream in EVENT_STREAMS]  # type: ignore[misc]

    @property
    def opt_in_streams(self) -> list[AuditEventsV3Stream]:
        """The streams read only when selected (the v3 beta), in the tap's order."""
        return [self.streams[stream.name] for stream in OPT_IN_STREAMS]  # type: ignore[misc]

    @override
    def sync_tuning(self) -> AbstractContextManager[None]:
        return self.run.syncing()

    @override
    def state_interval(self) -> float:
        return self.settings.state_interval
