"""The one way tests run the tap, and what it must produce.

Two entries: ``run_tap`` runs a sync in this process (fast, and retry waits can be
shortened); ``run_command`` (and ``run_command_and_kill``) run the real `tap-onepassword`
command, for what a user sees on the console (one-line errors, secrecy at DEBUG, a kill
mid-run). ``run_cli`` is ``run_command``'s short form.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tap_onepassword.streams import EVENT_FEATURES
from tap_onepassword.tap import TapOnePassword
from tap_onepassword.timestamps import normalise_timestamp
from tests.support.tokens import make_token  # noqa: F401 - tests import it from here too

if TYPE_CHECKING:
    from onepassword_emulator import Emulator

TAP = Path(sys.executable).with_name("tap-onepassword")
WARP_DIR = Path(__file__).parents[1] / "reliability" / "warp"
"""The reliability tests' `sitecustomize`: a child's clock and sleeps become virtual."""
LOG_RECORD = re.compile(r"^\d{4}-\d{2}-\d{2} [\d:,.]+ \| (\w+)\s*\|")
FEATURE_OF = EVENT_FEATURES
"""Each event stream's token feature (and endpoint), as the tap declares them."""
EVENT_STREAMS = tuple(FEATURE_OF)


class SyncResult(list[dict[str, Any]]):
    """Every message one in-process run wrote, parsed, in order; and views of them."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages themselves (the result is that list)."""
        return self

    @cached_property
    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Record payloads by stream, in emitted order."""
        out: dict[str, list[dict[str, Any]]] = {}
        for message in self:
            if message["type"] == "RECORD":
                out.setdefault(message["stream"], []).append(message["record"])
        return out

    @property
    def states(self) -> list[dict[str, Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, Any]:
        """The last STATE value."""
        return self.states[-1]

    def of(self, stream: str, account: str) -> list[dict[str, Any]]:
        """Records of one stream and account, in emitted order."""
        return [r for r in self.records.get(stream, []) if r["account_name"] == account]


def partition(state: dict[str, Any], stream: str, account: str) -> dict[str, Any]:
    """The state of one stream and account."""
    for entry in state["bookmarks"][stream]["partitions"]:
        if entry["context"] == {"account_name": account}:
            return entry
    msg = f"no partition for {stream}/{account}"
    raise KeyError(msg)


def expected_records(emu: Emulator, account: str, stream: str, version: str = "v2") -> list:
    """What the tap must emit for one stream and account: the emulator's events, each with
    its timestamp normalised and the account name added."""
    out = []
    for event in emu.events(account, FEATURE_OF[stream], version=version):
        record = dict(event)
        record["timestamp"] = normalise_timestamp(record["timestamp"])
        record["account_name"] = account
        out.append(record)
    return out


def tap_config(emu: Emulator, names: list[str] | None = None, **settings: Any) -> dict:
    """A config reading the emulator's accounts (all, or those named) over loopback HTTP."""
    chosen = [a for a in emu.accounts if names is None or a.name in names]
    return {
        "accounts": [{"name": a.name, "token": a.token} for a in chosen],
        "base_url": emu.base_url,
        **settings,
    }


def run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
) -> SyncResult:
    """Run a full sync in this process; return every message it wrote, parsed, in order."""
    tap = TapOnePassword(config=config, state=state, catalog=catalog)
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(stdout):
        tap.sync_all()
    stdout.seek(0)
    return SyncResult(json.loads(line) for line in stdout.read().splitlines())


def run_tap_keeping_output(
    config: dict[str, Any], state: dict[str, Any] | None = None
) -> tuple[SyncResult, Exception | None]:
    """Run a full sync in this process; return what it wrote, and what it raised at the end."""
    tap = TapOnePassword(config=config, state=state)
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    error: Exception | None = None
    with redirect_stdout(stdout):
        try:
            tap.sync_all()
        except Exception as exc:  # noqa: BLE001 - handed to the test to check
            error = exc
    stdout.seek(0)
    return SyncResult(json.loads(line) for line in stdout.read().splitlines()), error


def duplicates(records: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Primary keys seen more than once (the SDK's own uniqueness test cannot fail in 0.54)."""
    counts = Counter((r["account_name"], r["uuid"]) for r in records)
    return {key: n for key, n in counts.items() if n > 1}


# -- the tap as its command, in a subprocess --------------------------------------------


def tap_executable() -> str:
    """Path of the installed console script, next to the running interpreter when possible."""
    return str(TAP) if TAP.exists() else "tap-onepassword"


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


def run_command(  # noqa: PLR0913
    workdir: Path,
    config: dict[str, Any] | None,
    *,
    state: dict[str, Any] | None = None,
    args: tuple[str, ...] = (),
    warp: bool = False,
    sleep_log: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    name: str = "run",
) -> TapResult:
    """Run the `tap-onepassword` command to completion and parse what it printed.

    Config and state go to files in ``workdir``; ``warp`` puts the reliability tests' time warp
    in the child (its waits then pass at once).
    """
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


def run_command_and_kill(  # noqa: PLR0913
    workdir: Path,
    config: dict[str, Any],
    *,
    state: dict[str, Any] | None,
    kill_after_lines: int,
    sig: signal.Signals = signal.SIGKILL,
    warp: bool = False,
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


def run_cli(
    *args: str,
    config: dict[str, Any] | None = None,
    tmp_path: Path,
    env: dict[str, str] | None = None,
) -> TapResult:
    """Run the real `tap-onepassword` command with a config file (``run_command``'s short form)."""
    return run_command(tmp_path, config, args=args, env=env)


def selecting(config: dict[str, Any], *streams: str) -> dict[str, Any]:
    """The tap's discovered catalog with exactly `streams` selected (as Meltano's select does)."""
    catalog = TapOnePassword(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog
