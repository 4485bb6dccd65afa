"""The command line: the SDK's flags, with every failure reported as one line and exit 1.

A tap runs unattended; when it cannot go on, the operator should read one sentence saying
what is wrong and what to do, not a traceback (which could also carry values it should not).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click
import requests
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError
from singer_sdk.plugin_base import SingerCommand
from typing_extensions import override

from tap_onepassword.errors import TapOnePasswordError

if TYPE_CHECKING:
    import logging

PREFIX = "tap-onepassword: error:"


def fail(message: str) -> NoReturn:
    """Print one line on stderr and exit 1.

    Args:
        message: What is wrong and what to do.

    """
    line = " ".join(message.split())
    click.echo(f"{PREFIX} {line}", err=True)
    sys.exit(1)


class OnePasswordCommand(SingerCommand):
    """The SDK's Singer command, with failures turned into one line."""

    @classmethod
    def wrapping(cls, command: click.Command, logger: logging.Logger) -> OnePasswordCommand:
        """Take over the SDK's command, keeping all its options and callbacks.

        Args:
            command: The command the SDK built.
            logger: The tap's logger.

        Returns:
            The same command with one-line failures.

        """
        return cls(
            name=command.name,
            callback=command.callback,
            params=command.params,
            help=command.help,
            context_settings=command.context_settings,
            logger=logger,
        )

    @override
    def main(self, *args: Any, **kwargs: Any) -> Any:
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
