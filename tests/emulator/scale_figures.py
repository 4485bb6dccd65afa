"""Print the emulator's scale figures: build time, memory, and server CPU per 1,000-item page.

Run: ``python tests/emulator/scale_figures.py [events_per_stream]`` (default 1,000,000). It builds
the default three accounts (eight streams) with that many events each, then reads 1,000-item
pages over HTTP from every stream and both API versions: a reset at the start of the history,
two continuing pages, and a reset in the middle of the history. For each it reports the server
CPU time the emulator recorded (``RequestRecord.cpu_seconds``: ``time.thread_time`` around the
whole request in the handler thread, rendering and JSON included, socket I/O excluded).
"""

# ruff: noqa: T201 - printing the figures is this script's job
from __future__ import annotations

import resource
import statistics
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import requests

from onepassword_emulator import Emulator


def _rss_mib() -> float:
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    before = _rss_mib()
    started, started_cpu = time.perf_counter(), time.process_time()
    emu = Emulator(seed=1, events=events)
    build_wall, build_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    after = _rss_mib()
    streams = sum(len(account.features) for account in emu.accounts)
    print(f"events per stream: {events:,}; streams: {streams}; total events: {events * streams:,}")
    print(
        f"build: {build_wall:.1f} s wall, {build_cpu:.1f} s CPU "
        f"({build_cpu / streams:.2f} s per stream)"
    )
    print(
        f"memory: RSS {before:.0f} -> {after:.0f} MiB (+{after - before:.0f} MiB, "
        f"{(after - before) * 2**20 / (events * streams):.1f} bytes/event); "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    middle = (emu.now - timedelta(days=45)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cpu_ms: dict[str, list[float]] = defaultdict(list)
    with emu, requests.Session() as http:
        for account in emu.accounts:
            headers = {"Authorization": f"Bearer {account.token}"}
            for feature in account.features:
                for version in ("v1", "v2"):
                    url = f"{emu.base_url}/api/{version}/{feature}"
                    bodies = [{"limit": 1000, "start_time": "2020-01-01T00:00:00Z"}]
                    for kind in ("reset at start", "continue", "continue", "reset in middle"):
                        body = (
                            bodies[-1]
                            if kind != "reset in middle"
                            else {"limit": 1000, "start_time": middle}
                        )
                        page = http.post(url, json=body, headers=headers, timeout=60).json()
                        assert len(page["items"]) == 1000, (url, kind, len(page["items"]))
                        bodies.append({"cursor": page["cursor"]})
                        record = emu.requests[-1]
                        cpu_ms[kind].append(record.cpu_seconds * 1000)
                        cpu_ms[f"{version}/{feature}"].append(record.cpu_seconds * 1000)
    every = sorted(value for key, values in cpu_ms.items() if "/" not in key for value in values)
    print(
        f"server CPU per 1,000-item page over {len(every)} pages: "
        f"median {statistics.median(every):.1f} ms, "
        f"p95 {every[int(len(every) * 0.95) - 1]:.1f} ms, max {every[-1]:.1f} ms"
    )
    for key, values in cpu_ms.items():
        print(f"  {key:22s} median {statistics.median(values):5.1f} ms, max {max(values):5.1f} ms")


if __name__ == "__main__":
    main()
