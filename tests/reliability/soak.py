"""Fault soak: drive a whole extraction through random faults and kills, then account for it.

Used two ways:

* by ``tests/reliability/test_fault_soak.py`` and ``test_kill_resume.py`` with CI-sized plans;
* as the ``make soak`` driver (``python tests/reliability/soak.py``), which runs a 100,000-event
  extraction with many faults and SIGKILLs and prints what it tried and what it found.

The tap is a black box: its CLI in a subprocess (time-warped, see ``warp/sitecustomize.py``), the
emulator through its Python API. A fault injector thread watches the requests the emulator sees
and schedules a random fault (``emu.fail_next``) every few requests. After each run (finished,
failed or killed) the next one resumes from the last STATE line a target would have received.
At the end the union of landed events must equal the emulator's, and duplicates must come only
from where a fault or a kill forced a re-read. "Rejected cursor" is played by rotating the
emulator's cursor secret (at most once per run), so every stream's next cursor request gets 400.
No run may print a traceback or any part of a token, and no token may send more than 600
requests in any minute. (A request cut off by a SIGKILL reaches the emulator with a partial
body and is logged there as a 400: that is the kill, not the tap.)
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

if __package__ in {None, ""}:  # run as a script: make the repository's tests importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.reliability.harness import (
    STREAM_OF_FEATURE,
    TapResult,
    duplicate_counts,
    run_tap,
    run_tap_and_kill,
    secret_fragments,
)

Key = tuple[str, str, str]
FAULT_MENU: tuple[str, ...] = (
    "429-storm",
    "429-retry-after",
    "5xx-burst",
    "reset",
    "hang",
    "truncate",
    "truncate-incomplete",
    "empty_page",
    "reject_cursor",
)


@dataclass
class SoakPlan:
    """What to try."""

    seed: int = 1
    events_per_stream: int = 400
    page_size: int = 100
    api_version: str = "v2"
    fault_every: tuple[int, int] = (3, 8)  # a fault after every 3 to 8 clean data requests
    faults: tuple[str, ...] = FAULT_MENU
    kills: int = 0
    request_timeout: int = 2
    late_events: int = 0  # late events ingested between runs (only without reject_cursor)
    max_runs: int = 40
    latency_ms: float = 8  # slows the emulator just enough for the injector to keep up
    state_interval_seconds: int = 1  # a STATE at most every second (virtual time: see warp)


@dataclass
class SoakReport:
    """What happened and what was found."""

    plan: SoakPlan
    expected: int = 0
    landed_unique: int = 0
    landed_total: int = 0
    missing: list[Key] = field(default_factory=list)
    unexpected: list[Key] = field(default_factory=list)
    faults_scheduled: Counter[str] = field(default_factory=Counter)
    faults_unserved: int = 0
    statuses_seen: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    kills: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    failed_runs: list[str] = field(default_factory=list)
    excused_failures: list[str] = field(default_factory=list)
    duplicates: Counter[tuple[str, str]] = field(default_factory=Counter)
    duplicates_after_kill: list[dict[tuple[str, str], int]] = field(default_factory=list)
    uncommitted_at_stop: list[int] = field(default_factory=list)
    """Per run: records a target had received after the last STATE of the runs before."""
    reread_beyond_stop: list[dict[tuple[str, str], int]] = field(default_factory=list)
    """Per run: re-read records a target had already committed (only a rejected cursor may)."""
    states_before_stops: int = 0
    """STATE messages a target received from runs that were then stopped."""
    kill_bound_violations: list[str] = field(default_factory=list)
    unexplained_duplicates: dict[str, int] = field(default_factory=dict)
    state_gaps: list[str] = field(default_factory=list)
    tracebacks: int = 0
    leaks: int = 0
    late_added: int = 0
    requests: int = 0
    max_per_minute: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def problems(self) -> list[str]:
        """Every broken promise, one line each; empty when the soak passed."""
        out: list[str] = []
        if self.missing:
            out.append(f"{len(self.missing)} events never landed, e.g. {self.missing[:3]}")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} landed events the emulator does not hold")
        out += [f"failed run: {line}" for line in self.failed_runs]
        out += [
            f"re-read after a stop beyond what came after its last STATE: {v}"
            for v in self.kill_bound_violations
        ]
        out += [
            f"duplicates without a fault that forces a re-read: {k} x{v}"
            for k, v in self.unexplained_duplicates.items()
        ]
        out += [f"state gap: {g}" for g in self.state_gaps]
        if self.tracebacks:
            out.append(f"{self.tracebacks} runs printed a traceback")
        if self.leaks:
            out.append(f"{self.leaks} runs printed a token (or part of one)")
        out += [
            f"{acct}: {n} requests in one minute (limit 600)"
            for acct, n in self.max_per_minute.items()
            if n > 600
        ]
        return out

    def render(self) -> str:
        """The report ``make soak`` prints."""
        p = self.plan
        lines = [
            "== fault soak: what was tried ==",
            (
                f"events: {self.expected} ({p.events_per_stream} per stream and account,"
                f" api {p.api_version}), page_size {p.page_size},"
                f" request_timeout {p.request_timeout}s, seed {p.seed}"
            ),
            f"faults scheduled: {sum(self.faults_scheduled.values())}"
            f" ({self.faults_unserved} dropped unserved when their path went quiet): "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.faults_scheduled.items())),
            "answers the emulator gave: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses_seen.items())),
            (
                f"tap runs: {self.runs} ({self.kills} stopped: "
                + (", ".join(f"{k} {v}" for k, v in sorted(self.signals.items())) or "none")
                + f"; {len(self.failed_runs)} failed,"
                f" {len(self.excused_failures)} failed on purpose), requests: {self.requests},"
                f" busiest minute per token: {max(self.max_per_minute.values(), default=0)}"
            ),
            f"late events (older timestamps) ingested between runs: {self.late_added}",
            f"wall time: {self.seconds:.1f}s",
            "== what was found ==",
            (
                f"landed: {self.landed_unique} unique of {self.expected} expected"
                f" ({self.landed_total} records, {sum(self.duplicates.values())} duplicates)"
            ),
        ]
        if self.duplicates_after_kill:
            worst = max((max(d.values(), default=0) for d in self.duplicates_after_kill), default=0)
            lines.append(
                f"largest re-read after a kill: {worst} records in one stream/account"
                f" (bound: what the stopped run emitted after its last STATE, at most"
                f" {max(self.uncommitted_at_stop, default=0)} records here;"
                f" state_interval_seconds {p.state_interval_seconds})"
            )
        lines += [f"  - {e}" for e in self.excused_failures]
        problems = self.problems()
        lines.append(
            "PASS: nothing lost, nothing leaked, duplicates bounded"
            if not problems
            else f"FAIL: {len(problems)} problem(s)"
        )
        lines += [f"  ! {problem}" for problem in problems]
        return "\n".join(lines)


class FaultInjector(threading.Thread):
    """Watch the emulator's requests and schedule a random fault every few clean requests."""

    def __init__(self, emu: Any, plan: SoakPlan, paths: list[str], rng: random.Random) -> None:
        """Inject into ``paths`` (the data endpoints in use) with ``plan``'s rhythm."""
        super().__init__(daemon=True)
        self.emu = emu
        self.plan = plan
        self.paths = paths
        self.rng = rng
        self.scheduled: Counter[str] = Counter()
        self._deck: list[str] = []
        self.rotations_left = 1
        self.reject_paths: set[str] = set()
        self.unserved = 0
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Stop injecting (pending faults stay scheduled)."""
        self._stop_event.set()
        self.join(timeout=5)

    def run(self) -> None:
        """Loop: wait for some clean requests, then schedule one fault."""
        seen = len(self.emu.requests)
        gap = self.rng.randint(*self.plan.fault_every)
        while not self._stop_event.wait(0.003):
            if pending_faults(self.emu):
                if len(self.emu.requests) - seen > 40:
                    self.emu.clear_faults()
                    self.unserved += 1
                continue
            now = len(self.emu.requests)
            if now - seen < gap:
                continue
            seen, gap = now, self.rng.randint(*self.plan.fault_every)
            self.inject(self.next_kind(), self.emu.requests[-1].path)

    def new_run(self) -> None:
        """A new tap run starts: it may meet one more cursor rejection."""
        self.rotations_left = 1

    def next_kind(self) -> str:
        """Deal fault kinds from a shuffled deck, so every kind is tried before any repeats."""
        if not self._deck:
            self._deck = list(self.plan.faults)
            self.rng.shuffle(self._deck)
        return self._deck.pop()

    def inject(self, kind: str, path: str) -> None:
        """Schedule one fault of the menu on ``path``."""
        rng = self.rng
        if kind == "429-storm":
            self.emu.fail_next(path, "429", count=rng.randint(1, 3))
        elif kind == "429-retry-after":
            self.emu.fail_next(path, "429", count=rng.randint(1, 2), retry_after=rng.randint(1, 5))
        elif kind == "5xx-burst":
            self.emu.fail_next(path, rng.choice(["500", "502", "503"]), count=rng.randint(1, 3))
        elif kind == "hang":
            self.emu.fail_next(path, "hang", seconds=self.plan.request_timeout + 1)
        elif kind == "truncate-incomplete":
            self.emu.fail_next(path, "truncate", incomplete=True)
        elif kind == "empty_page":
            self.emu.fail_next(path, "empty_page", count=rng.randint(1, 3))
        elif kind == "reject_cursor":
            # Every cursor issued so far becomes invalid (as when the API's cursor secret or
            # lifetime ends): the next cursor request of each stream gets 400. Once per run.
            if not self.rotations_left:
                return
            self.rotations_left -= 1
            self.emu.rotate_secret()
            self.reject_paths.add(path)
        else:
            self.emu.fail_next(path, kind)
        self.scheduled[kind] += 1


def pending_faults(emu: Any) -> int:
    """How many scheduled faults the emulator has not served yet."""
    return len(emu.faults.pending())


def expected_keys(emu: Any, version: str) -> set[Key]:
    """Every (stream, account, uuid) the emulator would serve now."""
    keys: set[Key] = set()
    for account in emu.accounts:
        for feature in account.features:
            for event in emu.events(account.name, feature, version=version):
                keys.add((STREAM_OF_FEATURE[feature], account.name, event["uuid"]))
    return keys


def tap_config(emu: Any, plan: SoakPlan) -> dict[str, Any]:
    """A multi-account config for every emulator account."""
    return {
        "accounts": [{"name": a.name, "token": a.token} for a in emu.accounts],
        "base_url": emu.base_url,
        "api_version": plan.api_version,
        "page_size": plan.page_size,
        "request_timeout": plan.request_timeout,
        "state_interval_seconds": plan.state_interval_seconds,
    }


def busiest_minute(times: list[float]) -> int:
    """The most requests inside any 60-second window."""
    times = sorted(times)
    best, low = 0, 0
    for high, t in enumerate(times):
        while t - times[low] >= 60:
            low += 1
        best = max(best, high - low + 1)
    return best


def rejected_reset_requests(requests: list[Any], since: int) -> int:
    """Injected reject_cursor faults that hit a reset body (no cursor): nothing to fall back to."""
    return sum(
        1
        for r in requests[since:]
        if r.fault == "reject_cursor" and not (isinstance(r.body, dict) and r.body.get("cursor"))
    )


def run_soak(plan: SoakPlan, emulator_factory: Callable[..., Any], workdir: Path) -> SoakReport:  # noqa: C901, PLR0912, PLR0915
    """Run the plan against a fresh emulator and account for every event."""
    started = time.monotonic()
    rng = random.Random(plan.seed)
    report = SoakReport(plan)
    emu = emulator_factory(
        seed=plan.seed, events=plan.events_per_stream, latency_ms=plan.latency_ms
    )
    paths = sorted({f"/api/{plan.api_version}/{f}" for a in emu.accounts for f in a.features})
    injector = FaultInjector(emu, plan, paths, rng)
    config = tap_config(emu, plan)
    injector.start()
    fragments = [f for a in emu.accounts for f in secret_fragments(a.token)]
    state: dict[str, Any] | None = None
    committed: list[Key] = []  # what a target committed: records before each run's last STATE
    received: list[Key] = []  # everything a target read
    kills_left = plan.kills
    try:
        for run_no in range(plan.max_runs):
            report.runs += 1
            injector.new_run()
            before_requests = len(emu.requests)
            before_keys = set(received)
            uncommitted = before_keys - set(committed)
            if kills_left:
                estimate = max(1, len(expected_keys(emu, plan.api_version)) - len(set(received)))
                kill_at = rng.randint(1, max(2, estimate // kills_left))
                sig = rng.choice([signal.SIGKILL, signal.SIGKILL, signal.SIGTERM])
                result, killed = run_tap_and_kill(
                    workdir,
                    config,
                    state=state,
                    kill_after_lines=kill_at,
                    sig=sig,
                    name=f"run{run_no}",
                )
                if killed:
                    report.signals[sig.name] += 1
            else:
                result, killed = run_tap(workdir, config, state=state, name=f"run{run_no}"), False
            if _has_traceback(result):
                report.tracebacks += 1
            report.leaks += _leaks(result, fragments)
            keys = result.output.event_keys()
            if report.kills or report.failed_runs or report.excused_failures:
                redo = Counter((k[0], k[1]) for k in keys if k in before_keys)
                report.duplicates_after_kill.append(dict(redo))
                report.uncommitted_at_stop.append(len(uncommitted))
                beyond = Counter(
                    (k[0], k[1]) for k in keys if k in before_keys and k not in uncommitted
                )
                report.reread_beyond_stop.append(dict(beyond))
            received += keys
            if killed:
                kills_left -= 1
                report.kills += 1
                report.states_before_stops += len(result.output.states())
                if plan.late_events and not injector.reject_paths:
                    report.late_added += _add_late_events(emu, rng, plan.late_events)
            if killed or result.returncode != 0:
                committed += result.output.event_keys_before_last_state()
            else:
                committed += keys
            new_state = result.output.last_state()
            if new_state is not None:
                state = new_state
            if result.returncode != 0 and not killed:
                line = _last_error_line(result)
                if rejected_reset_requests(emu.requests, before_requests):
                    report.excused_failures.append(
                        f"run {run_no}: an injected reject_cursor hit a reset request: {line}"
                    )
                else:
                    report.failed_runs.append(f"run {run_no}: {line}")
                continue
            if not killed:
                break
    finally:
        injector.stop()
    _check_duplicates(report, received, emu)
    expected = expected_keys(emu, plan.api_version)
    landed = set(committed)
    report.expected = len(expected)
    report.landed_unique = len(set(received))
    report.landed_total = len(received)
    report.missing = sorted(expected - landed)
    report.unexpected = sorted(set(received) - expected)
    report.faults_scheduled = injector.scheduled
    report.faults_unserved = injector.unserved
    report.statuses_seen = Counter(str(r.status) for r in emu.requests)
    report.requests = len(emu.requests)
    by_account: dict[str, list[float]] = {}
    for r in emu.requests:
        if r.account:
            by_account.setdefault(r.account, []).append(r.time.timestamp())
    report.max_per_minute = {a: busiest_minute(t) for a, t in by_account.items()}
    report.seconds = time.monotonic() - started
    return report


def _check_duplicates(report: SoakReport, received: list[Key], emu: Any) -> None:
    """Duplicates must come from a stop (what came after its last STATE) or a rejected cursor."""
    report.duplicates = duplicate_counts(received)
    rejected = {
        (STREAM_OF_FEATURE[r.path.rsplit("/", 1)[-1]], r.account)
        for r in emu.requests
        if r.status == 400
        and isinstance(r.body, dict)
        and r.body.get("cursor")
        and r.account
        and r.path.rsplit("/", 1)[-1] in STREAM_OF_FEATURE
    }
    for index, beyond in enumerate(report.reread_beyond_stop):
        for (stream, account), count in beyond.items():
            if (stream, account) not in rejected:
                report.kill_bound_violations.append(
                    f"run {index + 1}: {stream}/{account} re-read {count} committed records"
                )
    if report.kills or report.failed_runs or report.excused_failures:
        return  # re-reads after a stop are bounded above instead
    for (stream, account), count in report.duplicates.items():
        if (stream, account) not in rejected:
            report.unexplained_duplicates[f"{stream}/{account}"] = count


def _add_late_events(emu: Any, rng: random.Random, count: int) -> int:
    account = rng.choice(emu.accounts)
    feature = rng.choice(account.features)
    emu.add_events(account.name, feature, count, late=True)
    return count


def _leaks(result: TapResult, fragments: list[str]) -> int:
    """1 when the run's stdout or stderr holds any token fragment."""
    return int(any(f in result.stdout or f in result.stderr for f in fragments))


def _has_traceback(result: TapResult) -> bool:
    return "Traceback (most recent call last)" in result.stderr


def _last_error_line(result: TapResult) -> str:
    errors = result.error_lines()
    if errors:
        return errors[-1][:300]
    tail = [line for line in result.stderr.splitlines() if line.strip()]
    return (tail[-1] if tail else f"exit {result.returncode}, no stderr")[:300]


def main(argv: list[str] | None = None) -> int:
    """``make soak``: 100,000 events through faults, SIGKILLs and SIGTERMs; exit 1 on a problem."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=100_000, help="total events (all streams and accounts)"
    )
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--seed", type=int, default=20251103)
    parser.add_argument("--request-timeout", type=int, default=3)
    parser.add_argument("--late-events", type=int, default=50)
    parser.add_argument("--api-version", default="v2", choices=["v1", "v2"])
    args = parser.parse_args(argv)
    from onepassword_emulator import Emulator  # noqa: PLC0415

    started: list[Any] = []

    def factory(**options: Any) -> Any:
        emu = Emulator(**options)
        started.append(emu)
        return emu.start(host="127.0.0.1", port=0)

    # The default emulator has 8 feature streams over its three accounts.
    per_stream = max(1, args.events // 8)
    reports = []
    try:
        with tempfile.TemporaryDirectory(prefix="tap-soak-") as tmp:
            phases = [
                (
                    "faults, no kills",
                    SoakPlan(
                        seed=args.seed,
                        events_per_stream=per_stream,
                        page_size=args.page_size,
                        kills=0,
                        request_timeout=args.request_timeout,
                        api_version=args.api_version,
                        max_runs=5,
                    ),
                ),
                (
                    "faults, SIGKILLs and SIGTERMs",
                    SoakPlan(
                        seed=args.seed + 1,
                        events_per_stream=per_stream,
                        page_size=args.page_size,
                        kills=args.kills,
                        request_timeout=args.request_timeout,
                        late_events=args.late_events,
                        faults=tuple(f for f in FAULT_MENU if f != "reject_cursor"),
                        api_version=args.api_version,
                        max_runs=args.kills + 10,
                    ),
                ),
            ]
            for title, plan in phases:
                print(f"\n### {title}", flush=True)  # noqa: T201
                report = run_soak(plan, factory, Path(tmp) / title.replace(" ", "-"))
                print(report.render(), flush=True)  # noqa: T201
                reports.append(report)
    finally:
        for emu in started:
            emu.stop()
    failed = [r for r in reports if r.problems()]
    print(f"\nsoak: {'FAIL' if failed else 'PASS'}", flush=True)  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
