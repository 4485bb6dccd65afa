"""``make bench`` (d): many accounts in one run, a backfill and small incremental runs.

A managed service provider reads every client's account in one scheduled run. What must grow
only with the work is measured here for 10, 100 and 1,000 accounts (3 event streams each, all
features, against one emulator process):

- **backfill**: the first run, ``--events`` per stream and account from ``start_date``
  (pages of ``--page-size``, so each partition has a few pages);
- **incremental**: then, ``--incremental-repeat`` times, ``--new-events`` new events are
  ingested per stream and account and the tap resumes from the previous run's last STATE, as
  an hourly schedule does.

Per run: event records and distinct events (each event must arrive once), the tap's CPU
seconds, wall seconds, peak RSS, and the bytes and number of STATE messages it wrote (stdout
is drained and counted by ``bench._Drain``). STATE bytes per account must stay flat as the
accounts grow: a STATE after every page holding every partition makes them grow with the
accounts.

Run with ``make bench BENCH_ARGS="--only d"``; ``--accounts-list 10,100`` for fewer.
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import TYPE_CHECKING, Any

from bench import (
    STREAMS,
    EmulatorProcess,
    ProcessRun,
    Workdir,
    discover,
    emulator,
    run_measured,
    start_time,
    tap_command,
    tap_config,
)

if TYPE_CHECKING:
    from collections.abc import Sequence


def account_names(count: int) -> list[str]:
    """Return ``count`` stable account names (``client0000``, ...)."""
    return [f"client{index:04d}" for index in range(count)]


def ingest(emu: EmulatorProcess, count: int) -> None:
    """Have the emulator ingest ``count`` new events per stream of every account."""
    for account in emu.accounts:
        for stream in STREAMS:
            emu.control(
                "POST",
                "events",
                {"account": account["name"], "feature": stream["feature"], "count": count},
            )


def _figures(run: ProcessRun, kind: str, accounts: int, expected: int) -> dict[str, Any]:
    if run.returncode != 0:
        sys.stderr.write(f"the tap failed ({kind}, {accounts} accounts):\n{run.stderr_tail}\n")
        raise SystemExit(1)
    if run.event_records != expected or run.unique_events != expected:
        sys.stderr.write(
            f"{kind}, {accounts} accounts: {run.event_records} records, {run.unique_events} "
            f"distinct, {expected} expected\n"
        )
        raise SystemExit(1)
    return {
        "kind": kind,
        "accounts": accounts,
        "records": run.event_records,
        "distinct_events": run.unique_events,
        "cpu_s": round(run.cpu, 3),
        "wall_s": round(run.wall, 3),
        "max_rss_mb": round(run.max_rss_mb, 1),
        "state_bytes": run.state_bytes,
        "state_messages": run.messages.get("STATE", 0),
        "state_bytes_per_account": round(run.state_bytes / accounts, 1),
        "last_state_bytes": len(json.dumps(_state_value(run), separators=(",", ":"))),
    }


def _state_value(run: ProcessRun) -> dict[str, Any]:
    """Return the value of the run's last STATE message: what the next run resumes from."""
    if run.last_state is None:
        sys.stderr.write("the tap wrote no STATE message\n")
        raise SystemExit(1)
    value: dict[str, Any] = run.last_state["value"]
    return value


def measure_accounts(  # noqa: PLR0913
    workdir: Workdir,
    *,
    accounts: int,
    events: int,
    page_size: int,
    new_events: int,
    repeat: int,
) -> dict[str, Any]:
    """Backfill ``accounts`` accounts, then run ``repeat`` small incremental runs."""
    runs: list[dict[str, Any]] = []
    with emulator(events=events, accounts=account_names(accounts)) as emu:
        config = workdir.write(
            "config.json", tap_config(emu, page_size=page_size, since=start_time())
        )
        catalog = discover(config, workdir)
        command = tap_command(config, catalog)
        emu.fresh_window()
        run = run_measured(command, keys=True)
        runs.append(_figures(run, "backfill", accounts, accounts * len(STREAMS) * events))
        state = _state_value(run)
        for round_no in range(repeat):
            ingest(emu, new_events)
            emu.fresh_window()
            state_file = workdir.write(f"state-{round_no}.json", state)
            run = run_measured([*command, "--state", str(state_file)], keys=True)
            runs.append(
                _figures(run, "incremental", accounts, accounts * len(STREAMS) * new_events)
            )
            state = _state_value(run)
    incremental = [r for r in runs if r["kind"] == "incremental"]
    summary = {
        key: statistics.median(r[key] for r in incremental)
        for key in ("cpu_s", "wall_s", "max_rss_mb", "state_bytes", "state_messages")
    }
    spread = {
        key: [min(r[key] for r in incremental), max(r[key] for r in incremental)]
        for key in ("cpu_s", "wall_s")
    }
    return {
        "accounts": accounts,
        "events_per_stream": events,
        "page_size": page_size,
        "new_events_per_stream": new_events,
        "runs": runs,
        "incremental_median": summary,
        "incremental_spread": spread,
    }


def measure_many_accounts(  # noqa: PLR0913
    workdir: Workdir,
    *,
    counts: Sequence[int],
    events: int,
    page_size: int,
    new_events: int,
    repeat: int,
) -> list[dict[str, Any]]:
    """Measure (d) for each number of accounts in ``counts``."""
    results = []
    for count in counts:
        print(f"   {count} accounts", flush=True)
        results.append(
            measure_accounts(
                Workdir(workdir.path, f"accounts-{count}"),
                accounts=count,
                events=events,
                page_size=page_size,
                new_events=new_events,
                repeat=repeat,
            )
        )
    return results


def table_rows(results: list[dict[str, Any]]) -> list[str]:
    """Return (d) as Markdown table rows: the backfill and the median incremental run."""
    rows = [
        (
            "| accounts | run | records | CPU s | wall s | max RSS MB | STATE messages | "
            "STATE bytes | STATE bytes per account |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        backfill = result["runs"][0]
        incremental = [r for r in result["runs"] if r["kind"] == "incremental"]
        if not incremental:
            continue
        middle = sorted(incremental, key=lambda r: r["cpu_s"])[len(incremental) // 2]
        for label, run in (("backfill", backfill), ("incremental (median CPU)", middle)):
            rows.append(
                f"| {result['accounts']:,} | {label} | {run['records']:,} | {run['cpu_s']:.2f} "
                f"| {run['wall_s']:.2f} | {run['max_rss_mb']:.0f} | {run['state_messages']:,} "
                f"| {run['state_bytes']:,} | {run['state_bytes_per_account']:,.0f} |"
            )
    return rows
