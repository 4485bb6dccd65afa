"""``tap-onepassword-emulator``: run the emulator from the command line.

Prints one JSON line (base URL and the accounts with their tokens) on stdout, then serves until
Ctrl-C or SIGTERM, and exits cleanly.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import NoReturn

from onepassword_emulator.emulator import Emulator
from onepassword_emulator.service import ERROR_STYLES


class _OneLineParser(argparse.ArgumentParser):
    """Reports bad arguments in one line on stderr, without the usage block."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` and exit 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        msg = f"must not be negative: {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        msg = f"must be at least 1: {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65_535:  # noqa: PLR2004 - the TCP port range
        msg = f"must be from 0 to 65535: {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        msg = f"must not be negative: {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = _OneLineParser(
        prog="tap-onepassword-emulator",
        description=(
            "A local 1Password Events API (v1, v2 and the v3 audit events beta) with "
            "deterministic data."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=0, help="port to bind; 0 picks a free one (default 0)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data")
    parser.add_argument(
        "--events",
        type=_non_negative_int,
        default=1000,
        help="initial events per stream per account (default 1000)",
    )
    parser.add_argument(
        "--latency-ms",
        type=_non_negative_float,
        default=0.0,
        help="milliseconds from an API request to its answer (at least)",
    )
    parser.add_argument(
        "--retry-after",
        type=_non_negative_float,
        default=None,
        help="send Retry-After with this many seconds on rate-limit 429s",
    )
    parser.add_argument(
        "--rate-limit-per-minute",
        type=_positive_int,
        default=600,
        help="requests a token may make in any minute (default 600)",
    )
    parser.add_argument(
        "--rate-limit-per-hour",
        type=_positive_int,
        default=30_000,
        help="requests a token may make in any hour (default 30000)",
    )
    parser.add_argument(
        "--error-style",
        choices=ERROR_STYLES,
        default="legacy",
        help="error body: legacy {Error:{Message}} or status {status,message}",
    )
    parser.add_argument(
        "--re-serve-final-page",
        action="store_true",
        help="a final page's cursor points at that page's first event, so posting it again "
        "serves the page again plus anything new",
    )
    parser.add_argument(
        "--v3-legacy-names",
        action="store_true",
        help="v3: read the beta's earlier names (page_size, next_page_token), answer has_more",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until interrupted; return the exit status."""
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        emulator = Emulator(
            seed=args.seed,
            events=args.events,
            latency_ms=args.latency_ms,
            retry_after=args.retry_after,
            error_style=args.error_style,
            rate_limit_per_minute=args.rate_limit_per_minute,
            rate_limit_per_hour=args.rate_limit_per_hour,
            re_serve_final_page=args.re_serve_final_page,
            v3_legacy_names=args.v3_legacy_names,
        ).start(host=args.host, port=args.port)
    except OSError as exc:
        print(  # noqa: T201 - the command's one-line error
            f"tap-onepassword-emulator: cannot serve on {args.host}:{args.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    try:
        print(json.dumps(emulator.describe()), flush=True)  # noqa: T201 - the documented output
        while not stop.wait(3600):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
