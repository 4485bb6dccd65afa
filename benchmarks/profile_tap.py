"""Profile one tap sync in-process with cProfile: where the time per record goes.

Why in-process: cProfile has to run inside the interpreter that does the work. The emulator runs
in its own process (the command line), so its rendering stays out of the profile; the tap's
stdout is sent to /dev/null at the file-descriptor level, as the SDK writes to ``sys.stdout``.

Usage: ``python benchmarks/profile_tap.py [--events N] [--sort tottime|cumulative] [--limit 40]``.
The raw profile is kept in ``benchmarks/results/profile.prof`` for snakeviz or pstats.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench


def main() -> int:
    """Profile a sync of every stream of the three default accounts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events per stream and account")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    parser.add_argument("--limit", type=int, default=40, help="rows to print")
    parser.add_argument("--out", type=Path, default=bench.RESULTS / "profile.prof")
    args = parser.parse_args()

    from tap_onepassword.tap import TapOnePassword  # noqa: PLC0415 - after argument checks

    args.out.parent.mkdir(parents=True, exist_ok=True)
    workdir = bench.Workdir(args.out.parent, "profile-work")
    with bench.emulator(events=args.events) as emu:
        config = bench.tap_config(emu, page_size=args.page_size, since=bench.start_time())
        catalog = json.loads(
            bench.discover(workdir.write("config.json", config), workdir).read_text(
                encoding="utf-8"
            )
        )
        tap = TapOnePassword(config=config, catalog=catalog, parse_env_config=False)
        saved_stdout = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        profiler = cProfile.Profile()
        started_cpu, started = time.process_time(), time.perf_counter()
        os.dup2(devnull, 1)
        try:
            profiler.enable()
            tap.sync_all()
            profiler.disable()
            sys.stdout.flush()
        finally:
            os.dup2(saved_stdout, 1)
            os.close(devnull)
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    profiler.dump_stats(args.out)
    print(f"sync under cProfile: {cpu:.2f} CPU s, {wall:.2f} s wall; profile in {args.out}")
    pstats.Stats(str(args.out)).sort_stats(args.sort).print_stats(args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
