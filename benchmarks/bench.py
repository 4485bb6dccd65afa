"""``make bench``: the tap's CPU per record, wall time under latency, peak memory, many accounts.

Four measurements, each against its own emulator process, each of the tap as a child process
whose resource usage is read with ``os.wait4`` (that process alone: user + system CPU seconds
and peak RSS), its stdout drained by this process through a pipe:

(a) **CPU per 100,000 records against the raw floor.** The tap syncs every stream of the three
    default accounts; ``benchmarks/raw_floor.py`` then fetches the same pages and writes the
    same RECORD lines with nothing else. Each is also run with nothing to sync, so the fixed
    cost (interpreter, imports, settings) can be taken out: the ratio compares the cost of one
    more record. The four runs make a round; the median round's ratio is kept (a shared
    machine's speed drifts; runs made together drift together). A small run first checks
    that the floor's records equal the tap's.
(b) **Wall time with latency.** N accounts x 3 streams against an emulator that answers every
    request ``--latency-ms`` after it arrived (its own handling included). The ideal is
    whichever binds: the slowest partition's requests (plus the account's introspection) times
    the latency, or the request budget (600 a minute per token). The sync's wall time runs from
    the first API request the emulator logged to the tap's exit, so interpreter start-up is not
    counted against it (the process's own wall time is reported too). The median of three runs
    is kept. Pages hold 100 events so that the network, not one core's CPU, binds: with
    1,000-event pages and 100 ms, twelve partitions would deliver 120,000 events a second, more
    than one core can emit.
(c) **Peak memory** of a run over 1,000,000 events (125,000 per stream and account).
(d) **Many accounts** (``benchmarks/many_accounts.py``): 10, 100 and 1,000 accounts, a backfill
    and small incremental runs, with the bytes and number of STATE messages written.

It prints a table and writes every figure to ``benchmarks/results/bench-<UTC time>.json`` and
``benchmarks/results/latest.json``. ``python benchmarks/bench.py --help`` lists the knobs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PYTHON = sys.executable
STREAMS = (
    {"name": "sign_in_attempts", "path": "/api/v2/signinattempts", "feature": "signinattempts"},
    {"name": "item_usages", "path": "/api/v2/itemusages", "feature": "itemusages"},
    {"name": "audit_events", "path": "/api/v2/auditevents", "feature": "auditevents"},
)
EVENT_STREAMS = {stream["name"] for stream in STREAMS}
PER_MINUTE = 600
PER_HOUR = 30_000


class _Head(msgspec.Struct):
    """The two keys of a Singer message the drain needs; msgspec skips the rest quickly."""

    type: str
    stream: str | None = None


_HEAD = msgspec.json.Decoder(_Head)


class _EventKey(msgspec.Struct):
    """What identifies an event record: its account and uuid."""

    account_name: str
    uuid: str


class _Record(msgspec.Struct):
    """A RECORD line's stream and key, for counting each event once."""

    stream: str
    record: _EventKey


_RECORD = msgspec.json.Decoder(_Record)


# -- processes -----------------------------------------------------------------------------


@dataclass
class ProcessRun:
    """What one measured child process did and cost."""

    returncode: int
    cpu_user: float
    cpu_sys: float
    max_rss_mb: float
    wall: float
    started: float
    ended: float
    records: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)
    last_state: dict[str, Any] | None = None
    last_output: float = 0.0
    stderr_tail: str = ""
    state_bytes: int = 0
    """Bytes of the STATE lines written (newlines included)."""
    unique_events: int = 0
    """Distinct (stream, account, uuid) among the event records, when counted."""

    @property
    def cpu(self) -> float:
        """User plus system CPU seconds."""
        return self.cpu_user + self.cpu_sys

    @property
    def event_records(self) -> int:
        """RECORD lines of the three event streams (introspection left out)."""
        return sum(n for name, n in self.records.items() if name in EVENT_STREAMS)


class _Drain(threading.Thread):
    """Reads a child's stdout in large chunks and counts Singer messages by type and stream."""

    def __init__(self, pipe: IO[bytes] | None, copy_to: Path | None, *, keys: bool = False) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.copy_to = copy_to
        self.records: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()
        self.last_state = b""
        self.last_output = 0.0
        self.state_bytes = 0
        self.keys: set[tuple[str, str, str]] | None = set() if keys else None

    def _count(self, line: bytes) -> None:
        if not line:
            return
        head = _HEAD.decode(line)
        self.messages[head.type] += 1
        if head.type == "RECORD":
            self.records[head.stream or ""] += 1
            if self.keys is not None and head.stream in EVENT_STREAMS:
                record = _RECORD.decode(line)
                self.keys.add((record.stream, record.record.account_name, record.record.uuid))
        elif head.type == "STATE":
            self.last_state = line
            self.state_bytes += len(line) + 1

    def run(self) -> None:
        assert self.pipe is not None
        copy = self.copy_to.open("wb") if self.copy_to else None
        rest = b""
        fd = self.pipe.fileno()
        try:
            while chunk := os.read(fd, 1 << 20):
                self.last_output = time.time()
                if copy:
                    copy.write(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    self._count(line)
            self._count(rest)
        finally:
            if copy:
                copy.close()


def run_measured(  # noqa: PLR0913
    command: Sequence[str],
    *,
    copy_stdout_to: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: Path | None = None,
    discard_stdout: bool = False,
    cwd: Path = ROOT,
    keys: bool = False,
) -> ProcessRun:
    """Run ``command``, drain its stdout, and return its own CPU, peak RSS and wall time.

    With ``discard_stdout`` the output goes to /dev/null instead, uncounted: nothing in this
    process then competes with the child for a core. With ``keys``, also count the distinct
    event records (stream, account, uuid).
    """
    with tempfile.TemporaryFile() as stderr, contextlib.ExitStack() as files:
        source = files.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        started = time.time()
        process = subprocess.Popen(
            list(command),
            stdin=source,
            stderr=stderr,
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL if discard_stdout else subprocess.PIPE,
        )
        drain = None
        if process.stdout is not None:
            drain = _Drain(process.stdout, copy_stdout_to, keys=keys)
            drain.start()
        _, status, usage = os.wait4(process.pid, 0)
        ended = time.time()
        process.returncode = os.waitstatus_to_exitcode(status)
        if drain is not None and process.stdout is not None:
            drain.join()
            process.stdout.close()
        else:
            drain = _Drain(None, None)
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace")[-4000:]
    return ProcessRun(
        returncode=process.returncode,
        cpu_user=usage.ru_utime,
        cpu_sys=usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        wall=ended - started,
        started=started,
        ended=ended,
        records=dict(drain.records),
        messages=dict(drain.messages),
        last_state=json.loads(drain.last_state) if drain.last_state else None,
        last_output=drain.last_output,
        stderr_tail=tail,
        state_bytes=drain.state_bytes,
        unique_events=len(drain.keys) if drain.keys is not None else 0,
    )


def _check(run: ProcessRun, what: str) -> None:
    if run.returncode != 0:
        sys.stderr.write(f"{what} failed with exit status {run.returncode}:\n{run.stderr_tail}\n")
        raise SystemExit(1)


# -- the emulator ---------------------------------------------------------------------------


class EmulatorProcess:
    """An emulator in a child process, steered over its ``/_emulator/`` control routes."""

    def __init__(
        self,
        *,
        events: int,
        latency_ms: float = 0,
        accounts: list[str] | None = None,
        msp: Sequence[str] = (),
    ) -> None:
        if accounts is None:  # the documented command line: the three default accounts
            command = [
                PYTHON,
                "-m",
                "onepassword_emulator",
                "--port",
                "0",
                "--seed",
                "1",
                "--events",
                str(events),
                "--latency-ms",
                str(latency_ms),
            ]
        else:
            command = [
                PYTHON,
                str(ROOT / "benchmarks" / "emulator_process.py"),
                "--accounts",
                ",".join(accounts),
                "--msp",
                ",".join(msp),
                "--events",
                str(events),
                "--latency-ms",
                str(latency_ms),
            ]
        self.latency_ms = latency_ms
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            sys.stderr.write("the emulator did not start\n")
            raise SystemExit(1)
        described = json.loads(line)
        self.base_url: str = described["base_url"]
        self.accounts: list[dict[str, Any]] = described["accounts"]

    def control(self, method: str, route: str, payload: dict[str, Any] | None = None) -> Any:  # noqa: ANN401
        """Call ``/_emulator/<route>`` and return its JSON answer."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_emulator/{route}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def fresh_window(self) -> None:
        """Forget counted requests and the request log, so runs do not share a rate window."""
        self.control("POST", "rate-limits/reset", {})
        self.control("DELETE", "requests")

    def requests(self) -> list[dict[str, Any]]:
        """Return the API request log."""
        return list(self.control("GET", "requests")["requests"])

    def stop(self) -> None:
        """Stop the emulator process (SIGTERM, then wait)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


@contextlib.contextmanager
def emulator(**kwargs: Any) -> Iterator[EmulatorProcess]:  # noqa: ANN401
    """Run an emulator for the duration of a ``with`` block."""
    process = EmulatorProcess(**kwargs)
    try:
        yield process
    finally:
        process.stop()


# -- the tap and the floor --------------------------------------------------------------------


def start_time() -> str:
    """Return a start well before the emulator's 90 days of history, inside retention."""
    moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=100)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Workdir:
    """Config, catalog and job files of one measurement."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = root / name
        self.path.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, content: Any) -> Path:  # noqa: ANN401
        """Write ``content`` as JSON to ``name`` and return its path."""
        target = self.path / name
        target.write_text(json.dumps(content, indent=1), encoding="utf-8")
        return target


def tap_config(emu: EmulatorProcess, *, page_size: int, since: str) -> dict[str, Any]:
    """Return the tap settings for every account the emulator serves."""
    return {
        "accounts": [{"name": a["name"], "token": a["token"]} for a in emu.accounts],
        "base_url": emu.base_url,
        "start_date": since,
        "page_size": page_size,
    }


def discover(config_path: Path, workdir: Workdir, *, selected: bool = True) -> Path:
    """Run ``--discover`` and return a catalog selecting the streams a default run reads.

    That is the streams selected by default (the v3 beta stream is opt-in, and the raw floor
    does not read it), or with ``selected=False`` none: the run's fixed cost.
    """
    out = subprocess.run(
        [PYTHON, "-m", "tap_onepassword", "--config", str(config_path), "--discover"],
        capture_output=True,
        check=False,
        cwd=ROOT,
    )
    if out.returncode != 0:
        sys.stderr.write(f"--discover failed:\n{out.stderr.decode(errors='replace')[-3000:]}\n")
        raise SystemExit(1)
    catalog = json.loads(out.stdout)
    for entry in catalog["streams"]:
        for item in entry.get("metadata", []):
            if not item.get("breadcrumb"):
                metadata = item["metadata"]
                metadata["selected"] = selected and metadata.get("selected-by-default", False)
    return workdir.write("catalog.json" if selected else "catalog-none.json", catalog)


def tap_command(config: Path, catalog: Path) -> list[str]:
    """Return the command line of one tap sync."""
    return [PYTHON, "-m", "tap_onepassword", "--config", str(config), "--catalog", str(catalog)]


def floor_job(emu: EmulatorProcess, *, page_size: int, since: str) -> dict[str, Any]:
    """Return the raw floor's job: the same accounts, streams, page size and start."""
    return {
        "base_url": emu.base_url,
        "accounts": [{"name": a["name"], "token": a["token"]} for a in emu.accounts],
        "streams": list(STREAMS),
        "page_size": page_size,
        "start_time": since,
    }


def floor_command(job: Path) -> list[str]:
    """Return the command line of one raw-floor run."""
    return [PYTHON, str(ROOT / "benchmarks" / "raw_floor.py"), str(job)]


# -- (a) CPU against the floor ------------------------------------------------------------------


def _records_of(path: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    records: dict[tuple[str, str, str], dict[str, Any]] = {}
    with path.open("rb") as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] == "RECORD" and message["stream"] in EVENT_STREAMS:
                record = message["record"]
                records[(message["stream"], record["account_name"], record["uuid"])] = record
    return records


def verify_floor(workdir: Workdir) -> dict[str, Any]:
    """Check on a small run that the floor writes the records the tap writes.

    Why: a ratio against a floor that does less (or other) work than the tap would flatter
    or wrong the tap. Records are compared field for field, ``time_extracted`` aside.
    """
    with emulator(events=1500) as emu:
        since = start_time()
        config = workdir.write("config.json", tap_config(emu, page_size=1000, since=since))
        catalog = discover(config, workdir)
        job = workdir.write("floor.json", floor_job(emu, page_size=1000, since=since))
        tap_out, floor_out = workdir.path / "tap.jsonl", workdir.path / "floor.jsonl"
        _check(run_measured(tap_command(config, catalog), copy_stdout_to=tap_out), "the tap")
        emu.fresh_window()
        _check(run_measured(floor_command(job), copy_stdout_to=floor_out), "the raw floor")
    tap_records, floor_records = _records_of(tap_out), _records_of(floor_out)
    differences = Counter[str]()
    for key in tap_records.keys() & floor_records.keys():
        tap_record, floor_record = tap_records[key], floor_records[key]
        for name in tap_record.keys() | floor_record.keys():
            if tap_record.get(name, "<absent>") != floor_record.get(name, "<absent>"):
                differences[f"{key[0]}.{name}"] += 1
    return {
        "tap_records": len(tap_records),
        "floor_records": len(floor_records),
        "missing_from_floor": len(tap_records.keys() - floor_records.keys()),
        "missing_from_tap": len(floor_records.keys() - tap_records.keys()),
        "fields_differing": dict(differences.most_common(10)),
        "identical": tap_records == floor_records,
    }


def measure_cpu(workdir: Workdir, *, events: int, repeat: int) -> dict[str, Any]:
    """Measure (a): the tap's and the floor's CPU seconds, fixed and per 100,000 records."""
    with emulator(events=events) as emu:
        since = start_time()
        config = workdir.write("config.json", tap_config(emu, page_size=1000, since=since))
        catalog = discover(config, workdir)
        no_streams = discover(config, workdir, selected=False)
        job = workdir.write("floor.json", floor_job(emu, page_size=1000, since=since))
        idle_job = workdir.write(
            "floor-idle.json",
            {**floor_job(emu, page_size=1000, since=since), "accounts": [], "streams": []},
        )
        runs: dict[str, list[ProcessRun]] = {
            "tap": [],
            "floor": [],
            "tap_fixed": [],
            "floor_fixed": [],
        }
        for _ in range(repeat):
            for kind, command in (
                ("tap", tap_command(config, catalog)),
                ("floor", floor_command(job)),
                ("tap_fixed", tap_command(config, no_streams)),
                ("floor_fixed", floor_command(idle_job)),
            ):
                emu.fresh_window()
                run = run_measured(command)
                _check(run, kind)
                runs[kind].append(run)
    tap, floor = runs["tap"], runs["floor"]
    if {r.event_records for r in tap} != {r.event_records for r in floor}:
        sys.stderr.write("the tap and the floor wrote different numbers of records\n")
        raise SystemExit(1)
    records = tap[0].event_records
    # Each repeat runs the four one after another: on a shared machine whose speed drifts,
    # a ratio of runs made close together is steadier than a ratio of separate minimums.
    per_100k = [
        (
            (runs["tap"][i].cpu - runs["tap_fixed"][i].cpu) / records * 100_000,
            (runs["floor"][i].cpu - runs["floor_fixed"][i].cpu) / records * 100_000,
        )
        for i in range(repeat)
    ]
    ratios = [tap_cost / floor_cost for tap_cost, floor_cost in per_100k]
    middle = sorted(range(repeat), key=lambda i: ratios[i])[repeat // 2]
    per_100k_tap, per_100k_floor = per_100k[middle]
    return {
        "records": records,
        "repeat": repeat,
        "tap_cpu_s": runs["tap"][middle].cpu,
        "floor_cpu_s": runs["floor"][middle].cpu,
        "tap_fixed_cpu_s": runs["tap_fixed"][middle].cpu,
        "floor_fixed_cpu_s": runs["floor_fixed"][middle].cpu,
        "tap_cpu_s_per_100k": per_100k_tap,
        "floor_cpu_s_per_100k": per_100k_floor,
        "ratio": ratios[middle],
        "ratios": [round(r, 3) for r in ratios],
        "ratio_whole_process": runs["tap"][middle].cpu / runs["floor"][middle].cpu,
        "tap_records_per_cpu_s": 100_000 / per_100k_tap,
        "all_cpu_s": {kind: [round(r.cpu, 3) for r in done] for kind, done in runs.items()},
        "tap_max_rss_mb": max(r.max_rss_mb for r in tap),
    }


# -- (b) wall time under latency ---------------------------------------------------------------


def _budget_seconds(requests: int) -> float:
    """Return the least time ``requests`` requests of one token take under the API's budget."""
    per_minute = (requests - 1) // PER_MINUTE * 60.0 if requests else 0.0
    per_hour = (requests - 1) // PER_HOUR * 3600.0 if requests else 0.0
    return max(per_minute, per_hour)


def measure_wall(  # noqa: PLR0913 - each knob of the measurement
    workdir: Workdir,
    *,
    accounts: int,
    pages: int,
    page_size: int,
    latency_ms: float,
    repeat: int,
) -> dict[str, Any]:
    """Measure (b): N accounts x 3 streams, every answer ``latency_ms`` late (median run)."""
    names = ["acme", "globex", "hooli", "umbrella", "wonka", "stark", "wayne", "tyrell"]
    names += [f"account{index}" for index in range(len(names), accounts)]
    results = []
    with emulator(
        events=pages * page_size, latency_ms=latency_ms, accounts=names[:accounts], msp=["globex"]
    ) as emu:
        since = start_time()
        config = workdir.write("config.json", tap_config(emu, page_size=page_size, since=since))
        catalog = discover(config, workdir)
        for _ in range(repeat):
            emu.fresh_window()
            run = run_measured(tap_command(config, catalog))
            _check(run, "the tap")
            results.append(_wall_figures(run, emu.requests(), latency_ms))
    results.sort(key=lambda figures: figures["sync_wall_s"])
    return {
        "accounts": accounts,
        "streams": len(STREAMS),
        "page_size": page_size,
        "latency_ms": latency_ms,
        "repeat": repeat,
        **results[repeat // 2],
        "all_wall_ratios": [round(figures["wall_ratio"], 3) for figures in results],
    }


def _wall_figures(run: ProcessRun, log: list[dict[str, Any]], latency_ms: float) -> dict[str, Any]:
    latency = latency_ms / 1000
    data = Counter((r["account"], r["path"]) for r in log if r["method"] == "POST")
    per_token = Counter(r["account"] for r in log)
    introspections = Counter(r["account"] for r in log if r["method"] == "GET")
    slowest = max(data.values())
    latency_bound = latency * (slowest + max(introspections.values(), default=0))
    budget_bound = max(_budget_seconds(n) for n in per_token.values())
    ideal = max(latency_bound, budget_bound)
    # The log's time is taken when the answer is ready, after the latency.
    first_request = min(dt.datetime.fromisoformat(r["time"]).timestamp() for r in log) - latency
    sync_wall = run.ended - first_request
    records = run.event_records
    return {
        "records": records,
        "requests": len(log),
        "non_200": sum(1 for r in log if r["status"] != 200),  # noqa: PLR2004
        "slowest_partition_requests": slowest,
        "ideal_s": ideal,
        "ideal_binds": "latency" if latency_bound >= budget_bound else "request budget",
        "sync_wall_s": sync_wall,
        "process_wall_s": run.wall,
        "wall_ratio": sync_wall / ideal,
        "records_per_s": records / sync_wall,
        "ideal_records_per_s": records / ideal,
        "tap_cpu_s": run.cpu,
        "max_rss_mb": run.max_rss_mb,
    }


# -- (c) peak memory ------------------------------------------------------------------------


def measure_memory(workdir: Workdir, *, events: int) -> dict[str, Any]:
    """Measure (c): peak RSS of the tap over every stream of the three default accounts."""
    with emulator(events=events) as emu:
        since = start_time()
        config = workdir.write("config.json", tap_config(emu, page_size=1000, since=since))
        catalog = discover(config, workdir)
        emu.fresh_window()
        run = run_measured(tap_command(config, catalog))
        _check(run, "the tap")
    return {
        "events_per_stream": events,
        "records": run.event_records,
        "max_rss_mb": run.max_rss_mb,
        "process_wall_s": run.wall,
        "tap_cpu_s": run.cpu,
        "records_per_s": run.event_records / run.wall,
        "state_messages": run.messages.get("STATE", 0),
    }


# -- report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Describe where the figures come from."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()[0]
        memory_gb = int(first.split()[1]) / 1024 / 1024
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout.strip()
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "singer_sdk": metadata.version("singer-sdk"),
        "commit": commit,
    }


def print_table(results: dict[str, Any]) -> None:
    """Print the figures as a small table."""
    rows: list[tuple[str, str, str]] = []
    if cpu := results.get("cpu"):
        rows += [
            (
                "(a) tap CPU s / 100k records",
                f"{cpu['tap_cpu_s_per_100k']:.2f}",
                f"{cpu['records']:,} records, median of {cpu['repeat']} rounds, fixed cost out",
            ),
            (
                "(a) raw floor CPU s / 100k records",
                f"{cpu['floor_cpu_s_per_100k']:.2f}",
                "requests + msgspec decode + one RECORD line each",
            ),
            (
                "(a) CPU ratio tap / floor",
                f"{cpu['ratio']:.2f}",
                f"target <= 1.25; rounds {min(cpu['ratios']):.2f}..{max(cpu['ratios']):.2f}",
            ),
            ("(a) tap records per CPU second", f"{cpu['tap_records_per_cpu_s']:,.0f}", ""),
        ]
    if wall := results.get("wall"):
        rows += [
            (
                "(b) sync wall time s",
                f"{wall['sync_wall_s']:.2f}",
                (
                    f"{wall['accounts']} accounts x {wall['streams']} streams, "
                    f"page {wall['page_size']}, {wall['latency_ms']:.0f} ms latency, "
                    f"process {wall['process_wall_s']:.2f} s"
                ),
            ),
            (
                "(b) ideal s",
                f"{wall['ideal_s']:.2f}",
                (
                    f"{wall['ideal_binds']} binds: {wall['slowest_partition_requests']} pages "
                    "in the slowest partition + introspection"
                ),
            ),
            (
                "(b) wall-time ratio",
                f"{wall['wall_ratio']:.2f}",
                f"target <= 1.25; median of {wall['repeat']}: {wall['all_wall_ratios']}",
            ),
            (
                "(b) records/s",
                f"{wall['records_per_s']:,.0f}",
                f"ideal {wall['ideal_records_per_s']:,.0f}; {wall['records']:,} records",
            ),
        ]
    if memory := results.get("memory"):
        rows += [
            (
                "(c) peak RSS MB",
                f"{memory['max_rss_mb']:.0f}",
                f"{memory['records']:,} records; target < 300",
            ),
            (
                "(c) records/s",
                f"{memory['records_per_s']:,.0f}",
                f"process wall {memory['process_wall_s']:.1f} s, CPU {memory['tap_cpu_s']:.1f} s",
            ),
        ]
    if flow := results.get("pipeline"):
        import pipeline  # noqa: PLC0415 # it imports this module

        rows += pipeline.table_rows(flow)
    width = max(len(row[0]) for row in rows) if rows else 0
    value_width = max(len(row[1]) for row in rows) if rows else 0
    for label, value, note in rows:
        print(f"{label:<{width}}  {value:>{value_width}}  {note}")


def _many_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accounts-list",
        default="10,100,1000",
        help="(d) numbers of accounts, comma-separated (default 10,100,1000)",
    )
    parser.add_argument(
        "--many-events",
        type=int,
        default=100,
        help="(d) backfill events per stream and account (default 100)",
    )
    parser.add_argument(
        "--many-page-size",
        type=int,
        default=50,
        help="(d) page size of the backfill (default 50: two pages each)",
    )
    parser.add_argument(
        "--new-events",
        type=int,
        default=3,
        help="(d) events ingested per stream and account before each incremental run (default 3)",
    )
    parser.add_argument(
        "--incremental-repeat",
        type=int,
        default=3,
        help="(d) incremental runs after the backfill (default 3)",
    )


def _measure_many(args: argparse.Namespace, workdir: Workdir) -> list[dict[str, Any]]:
    print(">> (d) many accounts: a backfill and small incremental runs", flush=True)
    from many_accounts import measure_many_accounts  # noqa: PLC0415 - it imports this module

    return measure_many_accounts(
        workdir,
        counts=[int(n) for n in args.accounts_list.split(",")],
        events=args.many_events,
        page_size=args.many_page_size,
        new_events=args.new_events,
        repeat=args.incremental_repeat,
    )


def _parser() -> argparse.ArgumentParser:
    """The command line: which measurements, and their sizes."""
    parser = argparse.ArgumentParser(description="tap-onepassword throughput benchmark")
    parser.add_argument(
        "--only",
        default="a,b,c,d,pipeline",
        help="which measurements: a, b, c, d, pipeline (default all)",
    )
    parser.add_argument(
        "--cpu-events",
        type=int,
        default=50_000,
        help="(a) events per stream and account; 8 partitions (default 50000)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="(a) rounds of tap, floor and their fixed costs; median ratio kept",
    )
    parser.add_argument("--accounts", type=int, default=4, help="(b) accounts (default 4)")
    parser.add_argument(
        "--pages", type=int, default=50, help="(b) pages per stream and account (default 50)"
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=100,
        help="(b) page size; small so the network, not the CPU, binds (100)",
    )
    parser.add_argument("--latency-ms", type=float, default=100.0, help="(b) latency (100)")
    parser.add_argument("--wall-repeat", type=int, default=3, help="(b) runs, median kept")
    parser.add_argument(
        "--memory-events",
        type=int,
        default=125_000,
        help="(c) events per stream and account; 8 partitions (125000 = 1M)",
    )
    _many_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    import pipeline  # noqa: PLC0415 # it imports this module

    pipeline.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen measurements, print the table and write the JSON file."""
    import pipeline  # noqa: PLC0415 # it imports this module

    args = _parser().parse_args(argv)
    chosen = set(args.only.split(","))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = {"when": stamp, "machine": machine()}
    scratch = Path(tempfile.mkdtemp(prefix="tap-onepassword-bench-"))
    try:
        if "a" in chosen:
            print(">> (a) checking that the raw floor writes the tap's records", flush=True)
            results["floor_check"] = verify_floor(Workdir(scratch, "verify"))
            print(f"   {results['floor_check']}", flush=True)
            print(">> (a) CPU per record: tap against the raw floor", flush=True)
            results["cpu"] = measure_cpu(
                Workdir(scratch, "cpu"), events=args.cpu_events, repeat=args.repeat
            )
        if "b" in chosen:
            print(">> (b) wall time with latency", flush=True)
            results["wall"] = measure_wall(
                Workdir(scratch, "wall"),
                accounts=args.accounts,
                pages=args.pages,
                page_size=args.page_size,
                latency_ms=args.latency_ms,
                repeat=args.wall_repeat,
            )
        if "c" in chosen:
            print(">> (c) peak memory", flush=True)
            results["memory"] = measure_memory(
                Workdir(scratch, "memory"), events=args.memory_events
            )
        if "d" in chosen:
            results["many_accounts"] = _measure_many(args, Workdir(scratch, "many"))
        if "pipeline" in chosen:
            results["pipeline"] = pipeline.measure_as_asked(Workdir(scratch, "pipeline"), args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print_table(results)
    if many := results.get("many_accounts"):
        from many_accounts import table_rows  # noqa: PLC0415 - it imports this

        print()
        print("\n".join(table_rows(many)))
    out = args.out or RESULTS / f"bench-{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.out is None:
        shutil.copyfile(out, RESULTS / "latest.json")
    print(f"\nfigures written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
