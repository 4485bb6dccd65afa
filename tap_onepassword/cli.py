"""The command line: the SDK's flags, with every failure reported as one line and exit 1.

A tap runs unattended; when it cannot go on, the operator should read one sentence saying
what is wrong and what to do, not a traceback (which could also carry values it should not).
`--test` checks each account in plain words: its token, and one page of each stream it may read
(of the opt-in v3 beta too, when the catalog selects it).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click
import requests
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError
from singer_sdk.plugin_base import SingerCommand
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

from tap_onepassword.auditv3 import Boundary
from tap_onepassword.auditv3_stream import AuditEventsV3Stream
from tap_onepassword.errors import TapOnePasswordError, redact_secrets
from tap_onepassword.tap import TapOnePassword
from tap_onepassword.tokens import expiry_warning

if TYPE_CHECKING:
    import logging

    from singer_sdk.helpers.types import Context

    from tap_onepassword.events import EventStream
    from tap_onepassword.settings import Account

PREFIX = "tap-onepassword: error:"


def fail(message: str) -> NoReturn:
    """Print one line on stderr and exit 1.

    Args:
        message: What is wrong and what to do.

    """
    line = " ".join(redact_secrets(message).split())
    click.echo(f"{PREFIX} {line}", err=True)
    sys.exit(1)


INPUT_FILE_OPTIONS = ("--config", "--state", "--catalog")


def check_input_files(argv: list[str]) -> None:
    """Say which --config, --state or --catalog file is unreadable, before the SDK reads it.

    The SDK reads these files inside its command and fails on the first bad one with a
    parser's message (or a `dictionary update` error for a JSON list), without naming it.

    Args:
        argv: The command-line arguments (without the program name).

    """
    for index, arg in enumerate(argv):
        option, _, inline = arg.partition("=")
        if option not in INPUT_FILE_OPTIONS:
            continue
        path = inline or (argv[index + 1] if index + 1 < len(argv) else "")
        if not path or (option == "--config" and path == "ENV"):
            continue
        try:
            with open(path, encoding="utf-8") as handle:  # noqa: PTH123 - a plain read
                content = json.load(handle)
        except FileNotFoundError:
            fail(f"{option} file '{path}' does not exist")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{option} file '{path}' cannot be read ({type(exc).__name__})")
        except ValueError as exc:
            fail(f"{option} file '{path}' is not valid JSON ({str(exc).splitlines()[0]})")
        if not isinstance(content, dict):
            fail(f"{option} file '{path}' must hold a JSON object, not {type(content).__name__}")
        if option == "--state":
            problem = state_shape_problem(content)
            if problem:
                fail(
                    f"--state file '{path}': {problem}. It is not a state this tap wrote; fix it, "
                    "or start without it (the next run reads from start_date again)"
                )


def state_shape_problem(state: dict[str, Any]) -> str | None:
    """Say what is wrong with the shape of a state, or None when the SDK can load it.

    A damaged state store (hand edits, a truncated merge) would otherwise crash deep in the
    SDK with an error that names neither the file nor the place.

    Args:
        state: The parsed --state file.

    Returns:
        The first problem, or None.

    """
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        return "bookmarks must be an object"
    for stream, stream_state in bookmarks.items():
        if not isinstance(stream_state, dict):
            return f"bookmarks.{stream} must be an object"
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list):
            return f"bookmarks.{stream}.partitions must be a list"
        for index, partition in enumerate(partitions):
            if not isinstance(partition, dict) or not isinstance(partition.get("context"), dict):
                return f"bookmarks.{stream}.partitions[{index}] needs a context object"
    return None


ENV_PREFIX = "TAP_ONEPASSWORD_"


def check_environment_settings(argv: list[str], schema: dict[str, Any]) -> None:
    """With `--config ENV`, say which TAP_ONEPASSWORD_* variable cannot be read, by name.

    The SDK converts them by type inside its command: a bad whole number or JSON list ends
    in `unexpected ValueError: invalid literal for int()` naming neither the variable nor
    the setting, and a number setting (`request_timeout`) arrives as text and is refused
    whatever it says. Values are not echoed (the `accounts` list holds tokens).

    Args:
        argv: The command-line arguments (without the program name).
        schema: The tap's config JSON schema.

    """
    if "ENV" not in argv and "--config=ENV" not in argv:
        return
    for name, spec in schema.get("properties", {}).items():
        variable = ENV_PREFIX + name.upper().replace("-", "_")
        value = os.environ.get(variable)
        if value is None:
            continue
        kinds = spec.get("type", [])
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if "integer" in kinds:
            try:
                int(value)
            except ValueError:
                fail(f"{variable}: {name} must be a whole number")
        elif "number" in kinds:
            fail(
                f"{variable}: the Singer SDK hands number settings from the environment over "
                f"as text and then refuses them; set {name} in a --config file instead"
            )
        elif "array" in kinds or "object" in kinds:
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                fail(f"{variable}: {name} must be JSON ({exc.msg} at character {exc.pos})")


class OnePasswordCommand(SingerCommand):
    """The SDK's Singer command, with failures turned into one line."""

    settings_schema: dict[str, Any]

    @classmethod
    def wrapping(
        cls,
        command: click.Command,
        logger: logging.Logger,
        settings_schema: dict[str, Any] | None = None,
    ) -> OnePasswordCommand:
        """Take over the SDK's command, keeping all its options and callbacks.

        Args:
            command: The command the SDK built.
            logger: The tap's logger.
            settings_schema: The tap's config schema, to check settings given in the
                environment.

        Returns:
            The same command with one-line failures.

        """
        wrapped = cls(
            name=command.name,
            callback=command.callback,
            params=command.params,
            help=command.help,
            context_settings=command.context_settings,
            logger=logger,
        )
        wrapped.settings_schema = settings_schema or {}
        return wrapped

    @override
    def main(self, *args: Any, **kwargs: Any) -> Any:
        argv = kwargs.get("args", args[0] if args else None)
        argv = list(sys.argv[1:] if argv is None else argv)
        check_input_files(argv)
        check_environment_settings(argv, self.settings_schema)
        try:
            return super().main(*args, **kwargs)
        except TapOnePasswordError as exc:
            fail(str(exc))
        except ConfigValidationError as exc:  # pragma: no cover - the tap rewrites these
            fail(f"invalid settings: {'; '.join(exc.errors)}")
        except (FatalAPIError, RetriableAPIError) as exc:
            fail(f"the Events API answered an error: {exc}")
        except requests.RequestException as exc:
            fail(f"request failed: {type(exc).__name__}")
        except FileNotFoundError as exc:
            fail(f"cannot read a --config, --state or --catalog file: {exc}")
        except json.JSONDecodeError as exc:
            fail(f"a --config, --state or --catalog file is not valid JSON ({exc.msg})")
        except Exception as exc:
            self.logger.debug("unexpected error", exc_info=True)
            fail(
                f"unexpected {type(exc).__name__}: {str(exc)[:300]} (run with LOGLEVEL=DEBUG "
                "for details)"
            )


def check_accounts(tap: TapOnePassword) -> bool:
    """`--test`: introspect each account and read one page of each permitted stream.

    Every event stream is tried; an opt-in stream (the v3 beta) only when the catalog selects
    it. Prints what works and what does not, in plain words.

    Args:
        tap: The tap, its settings checked.

    Returns:
        True when every account works.

    """
    working = True
    for account in tap.settings.accounts:
        try:
            access = tap.run.introspect(account)
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
        expiring = expiry_warning(account.name, account.expires_at)
        if expiring:
            click.echo(f"  WARNING: {expiring}")
        streams: list[EventStream | AuditEventsV3Stream] = [*tap.event_streams]
        streams += [stream for stream in tap.opt_in_streams if stream.selected]
        for stream in streams:
            working = _check_stream(stream, account, access) and working
    click.echo("all accounts work" if working else "some checks FAILED (see above)")
    return working


def _check_stream(
    stream: EventStream | AuditEventsV3Stream, account: Account, access: dict[str, Any]
) -> bool:
    if stream.feature not in access["features"]:
        click.echo(f"  {stream.name}: skipped, the token lacks the '{stream.feature}' feature")
        return True
    try:
        found, since = _first_page(stream, {"account_name": account.name})
    except TapOnePasswordError as exc:
        click.echo(f"  {stream.name}: FAILED: {exc}")
        return False
    events = "events found" if found else f"no events since {since}"
    click.echo(f"  {stream.name}: OK, reading works ({events})")
    return True


def _first_page(stream: EventStream | AuditEventsV3Stream, context: Context) -> tuple[bool, str]:
    """Ask for a page of one event, as a first run would: whether one came, and since when."""
    if isinstance(stream, AuditEventsV3Stream):
        query = stream.first_query(Boundary(), page_size=1)
        v3_page = next(iter(stream.request_pages(context, query)))
        return bool(v3_page.audit_events), str(query["start_time"])
    body = {**stream.reset_body({}), "limit": 1}
    page = next(iter(stream.request_pages(context, body)))
    return bool(page.items), str(body["start_time"])


def run_test(ctx: click.Context, param: click.Parameter, value: str) -> None:
    """`--test` (all): check the accounts; the SDK's other test modes as the SDK runs them.

    Args:
        ctx: The click context (its `config` parameter parsed).
        param: The `--test` option.
        value: The test mode.

    """
    if value != CliTestOptionValue.All.value:
        TapOnePassword.cb_test(ctx, param, value)  # type: ignore[arg-type]
        return
    config, catalog = ctx.params["config"], ctx.params.get("catalog")
    tap = TapOnePassword(
        config=config.config,
        catalog=None if catalog is None else json.load(catalog),  # selects the opt-in streams
        parse_env_config=config.parse_env,
        validate_config=True,
    )
    ctx.exit(0 if check_accounts(tap) else 1)


def command() -> OnePasswordCommand:
    """Build the `tap-onepassword` command: the SDK's, with one-line failures and our `--test`.

    Returns:
        The command.

    """
    wrapped = OnePasswordCommand.wrapping(
        TapOnePassword.cli,
        logger=TapOnePassword.logger,
        settings_schema=TapOnePassword.config_jsonschema,
    )
    for param in wrapped.params:
        if param.name == "test":
            param.callback = run_test
        elif param.name == "catalog":
            param.is_eager = True  # read before `--test` runs, wherever it stands
    return wrapped


def main() -> None:
    """Run `tap-onepassword` with the process's arguments."""
    command()()
