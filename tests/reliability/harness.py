"""Drive tap-onepassword as a black box: its CLI in a subprocess, its Singer output parsed.

Shared by the reliability tests and the soak driver (``tests/reliability/soak.py``). The tap is
only ever reached through its command line, its config/state files and its stdout/stderr, so
these checks hold whatever the tap does inside. Running the command and minting tokens live in
``tests.support``; here they run with the time warp on, and the checks of a run's output.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tap_onepassword.streams import EVENT_FEATURES
from tests.support.runs import (
    WARP_DIR,
    SingerOutput,
    TapResult,
    run_command,
    run_command_and_kill,
    subprocess_env,
    tap_args,
    tap_executable,
)
from tests.support.tokens import mint_token

__all__ = [
    "WARP_DIR",
    "SingerOutput",
    "TapResult",
    "mint_token",
    "subprocess_env",
    "tap_args",
    "tap_executable",
]

FEATURE_OF_STREAM = dict(EVENT_FEATURES)
EVENT_STREAMS = tuple(FEATURE_OF_STREAM)
STREAM_OF_FEATURE = {feature: stream for stream, feature in FEATURE_OF_STREAM.items()}
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/')


def run_tap(
    workdir: Path, config: dict[str, Any] | None, *, warp: bool = True, **options: Any
) -> TapResult:
    """``run_command`` with the time warp on unless told otherwise."""
    return run_command(workdir, config, warp=warp, **options)


def run_tap_and_kill(
    workdir: Path, config: dict[str, Any], *, warp: bool = True, **options: Any
) -> tuple[TapResult, bool]:
    """``run_command_and_kill`` with the time warp on unless told otherwise."""
    return run_command_and_kill(workdir, config, warp=warp, **options)


def secret_fragments(token: str) -> list[str]:
    """The parts of a token that must never be printed, even cut short.

    The whole token, its signature, and every 24-character piece of its claims (past their
    common opening) and signature: a log line that cuts a token after 300 characters leaks as
    surely as one that prints it whole. The header segment is the same for every token of one
    key and says nothing secret, so it is not searched for.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return [token]
    claims, signature = parts[1], parts[2]
    fragments = [token, signature] if len(signature) >= 16 else [token]
    for segment, skip in ((claims, 48), (signature, 0)):
        fragments += [segment[i : i + 24] for i in range(skip, len(segment) - 23, 12)]
    return fragments


class ForkServer:
    """Run the tap CLI in children forked from one process that imported it (``zygote.py``).

    Same argv, files and exit codes as the console script, without a second of import per run.
    The zygote runs with the time warp on (no emulator mirror, no sleep log).
    """

    def __init__(self) -> None:
        """Start the zygote."""
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("zygote.py"))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=subprocess_env(warp=True),
        )

    def close(self) -> None:
        """Stop the zygote (closing stdin ends its loop)."""
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def run(  # noqa: PLR0913
        self,
        workdir: Path,
        config: dict[str, Any] | None,
        *,
        state: dict[str, Any] | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        timeout: float = 120,
        name: str = "run",
    ) -> TapResult:
        """One tap run, like ``run_tap``."""
        argv = tap_args(workdir, config, state=state, args=args, name=name)[1:]
        out, err = workdir / f"{name}-stdout.txt", workdir / f"{name}-stderr.txt"
        request = {"argv": argv, "env": env or {}, "stdout": str(out), "stderr": str(err)}
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        started = time.monotonic()
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        pid = json.loads(self._proc.stdout.readline())["pid"]
        timer = threading.Timer(timeout, _kill_quietly, (pid,))
        timer.start()
        try:
            answer = self._proc.stdout.readline()
        finally:
            timer.cancel()
        returncode = json.loads(answer)["returncode"]
        stdout = out.read_text(encoding="utf-8", errors="replace")
        return TapResult(
            returncode=returncode,
            stdout=stdout,
            stderr=err.read_text(encoding="utf-8", errors="replace"),
            output=SingerOutput.parse(stdout),
            seconds=time.monotonic() - started,
        )


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def assert_clean_failure(result: TapResult, *must_mention: str) -> None:
    """A failed run: non-zero exit, no traceback, a short error naming the problem."""
    assert result.returncode != 0, (
        f"expected a failure, got exit 0\nstderr:\n{result.stderr[-3000:]}"
    )
    assert_no_traceback(result)
    lowered = result.stderr.lower()
    for word in must_mention:
        assert word.lower() in lowered, (
            f"the error does not mention {word!r}\nstderr:\n{result.stderr[-3000:]}"
        )
    errors = result.error_lines()
    assert errors, f"no error line on stderr\nstderr:\n{result.stderr[-3000:]}"
    assert "error: unexpected" not in result.stderr, (
        "the tap crashed on something it did not expect:\n" + "\n".join(errors)
    )
    assert len(errors) <= 2, "more than one error report:\n" + "\n".join(errors)


def assert_no_traceback(result: TapResult) -> None:
    """Neither stream shows a Python traceback."""
    for name, text in (("stderr", result.stderr), ("stdout", result.stdout)):
        for marker in TRACEBACK_MARKERS:
            assert marker not in text, f"traceback on {name}:\n{text[-4000:]}"


def duplicate_counts(keys: list[tuple[str, str, str]]) -> Counter[tuple[str, str]]:
    """How many extra copies each (stream, account) received."""
    seen: set[tuple[str, str, str]] = set()
    extra: Counter[tuple[str, str]] = Counter()
    for key in keys:
        if key in seen:
            extra[(key[0], key[1])] += 1
        seen.add(key)
    return extra
