"""Drive tap-onepassword as a black box: its CLI in a subprocess, its Singer output parsed.

Shared by the reliability tests and the soak driver (``tests/reliability/soak.py``). The tap is
only ever reached through its command line, its config/state files and its stdout/stderr, so
these checks hold whatever the tap does inside.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tap_onepassword.streams import EVENT_FEATURES

WARP_DIR = Path(__file__).parent / "warp"
FEATURE_OF_STREAM = dict(EVENT_FEATURES)
EVENT_STREAMS = tuple(FEATURE_OF_STREAM)
STREAM_OF_FEATURE = {feature: stream for stream, feature in FEATURE_OF_STREAM.items()}
LOG_RECORD = re.compile(r"^\d{4}-\d{2}-\d{2} [\d:,.]+ \| (\w+)\s*\|")
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/')


def tap_executable() -> str:
    """Path of the installed console script, next to the running interpreter when possible."""
    beside = Path(sys.executable).parent / "tap-onepassword"
    return str(beside) if beside.exists() else "tap-onepassword"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def mint_token(
    aud: list[Any] | str | None,
    *,
    features: list[str] | None = None,
    auuid: str = "RELIABILITYACCOUNTUUID0001",
    exp: int | None = None,
    omit_aud: bool = False,
) -> str:
    """Mint a JWT-shaped Events token (unsigned: the tap decodes without verifying).

    Every token gets a random ``jti`` and signature part, so two tokens never share a secret
    segment and a leak of either is findable in output.
    """
    header = {"alg": "ES256", "kid": "reliabilitytestkeyid000000", "typ": "JWT"}
    claims: dict[str, Any] = {
        "1password.com/auuid": auuid,
        "1password.com/fts": features if features is not None else list(FEATURE_OF_STREAM.values()),
        "iat": int(time.time()) - 60,
        "jti": uuid.uuid4().hex,
    }
    if not omit_aud:
        claims["aud"] = aud
    if exp is not None:
        claims["exp"] = exp
    signature = os.urandom(64)
    return ".".join(
        (
            _b64url(json.dumps(header).encode()),
            _b64url(json.dumps(claims).encode()),
            _b64url(signature),
        )
    )


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


@dataclass
class SingerOutput:
    """The Singer messages a target would have read, in order."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    partial_tail: str = ""
    other_lines: list[str] = field(default_factory=list)
    """Lines that are not Singer messages: fine for --discover/--about/--test, never in a sync."""

    @classmethod
    def parse(cls, stdout: str) -> SingerOutput:
        """Parse complete lines; a torn last line (a kill mid-write) is not a message."""
        out = cls()
        lines = stdout.split("\n")
        out.partial_tail = lines.pop() if lines else ""
        for line in lines:
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if isinstance(message, dict) and "type" in message:
                out.messages.append(message)
            else:
                out.other_lines.append(line)
        return out

    def records(self, stream: str | None = None) -> list[dict[str, Any]]:
        """Record payloads, optionally for one stream."""
        return [
            m["record"]
            for m in self.messages
            if m.get("type") == "RECORD" and (stream is None or m.get("stream") == stream)
        ]

    def states(self) -> list[dict[str, Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m.get("type") == "STATE"]

    def last_state(self) -> dict[str, Any] | None:
        """The last STATE value: what a target would hand back for the next run."""
        states = self.states()
        return states[-1] if states else None

    def event_keys(self) -> list[tuple[str, str, str]]:
        """(stream, account_name, uuid) of every event record, duplicates kept."""
        return [
            (m["stream"], m["record"].get("account_name"), m["record"].get("uuid"))
            for m in self.messages
            if m.get("type") == "RECORD" and m.get("stream") in EVENT_STREAMS
        ]

    def event_keys_before_last_state(self) -> list[tuple[str, str, str]]:
        """Event keys a target would have committed: those before the last STATE line."""
        last = max((i for i, m in enumerate(self.messages) if m.get("type") == "STATE"), default=-1)
        return [
            (m["stream"], m["record"].get("account_name"), m["record"].get("uuid"))
            for m in self.messages[: last + 1]
            if m.get("type") == "RECORD" and m.get("stream") in EVENT_STREAMS
        ]


@dataclass
class TapResult:
    """One finished (or killed) tap run."""

    returncode: int
    stdout: str
    stderr: str
    output: SingerOutput
    seconds: float

    def error_lines(self) -> list[str]:
        """Stderr lines that report a failure: ERROR/CRITICAL log records, or plain lines
        (not log records, such as the CLI's last word) that speak of an error."""
        out = []
        for line in self.stderr.splitlines():
            record = LOG_RECORD.match(line)
            if record:
                if record.group(1) in {"ERROR", "CRITICAL"}:
                    out.append(line)
            elif re.search(r"\b(error|critical|fatal)\b", line, re.IGNORECASE):
                out.append(line)
        return out


def subprocess_env(
    *,
    warp: bool,
    sleep_log: Path | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment for a tap subprocess: no TAP_* leaks from the caller, optional time warp."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_ONEPASSWORD", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"))
        and k.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "loglevel"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    if warp:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(WARP_DIR), env.get("PYTHONPATH", "")) if p
        )
        env["TAP_RELIABILITY_WARP"] = "1"
        if sleep_log is not None:
            env["TAP_RELIABILITY_SLEEP_LOG"] = str(sleep_log)
    if extra:
        env.update(extra)
    return env


def tap_args(
    workdir: Path,
    config: dict[str, Any] | None,
    *,
    state: dict[str, Any] | None = None,
    args: tuple[str, ...] = (),
    name: str = "run",
) -> list[str]:
    """Command line for one run; config and state are written to files in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [tap_executable()]
    if config is not None:
        config_path = workdir / f"{name}-config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        cmd += ["--config", str(config_path)]
    if state is not None:
        state_path = workdir / f"{name}-state.json"
        state_path.write_text(json.dumps(state), encoding="utf-8")
        cmd += ["--state", str(state_path)]
    cmd += list(args)
    return cmd


def run_tap(  # noqa: PLR0913
    workdir: Path,
    config: dict[str, Any] | None,
    *,
    state: dict[str, Any] | None = None,
    args: tuple[str, ...] = (),
    warp: bool = True,
    sleep_log: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    name: str = "run",
) -> TapResult:
    """Run the tap to completion and parse what it printed."""
    cmd = tap_args(workdir, config, state=state, args=args, name=name)
    started = time.monotonic()
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        env=subprocess_env(warp=warp, sleep_log=sleep_log, extra=env),
        check=False,
    )
    return TapResult(
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        output=SingerOutput.parse(proc.stdout),
        seconds=time.monotonic() - started,
    )


def run_tap_and_kill(  # noqa: PLR0913
    workdir: Path,
    config: dict[str, Any],
    *,
    state: dict[str, Any] | None,
    kill_after_lines: int,
    sig: signal.Signals = signal.SIGKILL,
    warp: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    name: str = "run",
    args: tuple[str, ...] = (),
) -> tuple[TapResult, bool]:
    """Run the tap and signal it (SIGKILL unless ``sig`` says otherwise) once
    ``kill_after_lines`` stdout lines were read; a SIGTERMed tap may still write its last
    STATE, which is read to the end like a target would.

    Returns the result (with whatever complete lines a target would have received) and whether
    the kill happened (False when the tap finished first).
    """
    cmd = tap_args(workdir, config, state=state, args=args, name=name)
    stderr_path = workdir / f"{name}-stderr.txt"
    started = time.monotonic()
    with stderr_path.open("w", encoding="utf-8") as stderr_file:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            env=subprocess_env(warp=warp, extra=env),
        )
        assert proc.stdout is not None
        chunks: list[bytes] = []
        lines = 0
        killed = False
        deadline = started + timeout
        while True:
            line = proc.stdout.readline()
            if not line:
                break
            chunks.append(line)
            lines += 1
            if lines >= kill_after_lines:
                proc.send_signal(sig)
                killed = True
                # Whatever was already in the pipe reached the "target" too.
                chunks.append(proc.stdout.read())
                break
            if time.monotonic() > deadline:
                proc.kill()
                msg = f"tap still running after {timeout}s"
                raise TimeoutError(msg)
        proc.stdout.close()
        returncode = proc.wait(timeout=60)
    stdout = b"".join(chunks).decode("utf-8", errors="replace")
    return (
        TapResult(
            returncode=returncode,
            stdout=stdout,
            stderr=stderr_path.read_text(encoding="utf-8", errors="replace"),
            output=SingerOutput.parse(stdout),
            seconds=time.monotonic() - started,
        ),
        killed,
    )


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
