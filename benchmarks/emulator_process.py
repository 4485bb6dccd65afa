"""Run the emulator in its own process with accounts of the benchmark's choosing.

Why not the command line: ``tap-onepassword-emulator`` always serves the three default accounts,
and one of them (``initech``) has no item usages. The wall-time benchmark wants N accounts with
all three features. This script prints the same one JSON line as the command line, then serves
until SIGTERM or Ctrl-C.

Usage: ``python benchmarks/emulator_process.py --accounts a,b,c,d --events N [--latency-ms L]``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from onepassword_emulator import AccountSpec, Emulator


def main() -> int:
    """Serve the requested accounts until told to stop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", required=True, help="comma-separated account names")
    parser.add_argument("--events", type=int, required=True, help="events per stream per account")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--msp", default="", help="comma-separated names of MSP accounts")
    args = parser.parse_args()
    msp = set(filter(None, args.msp.split(",")))
    specs = [AccountSpec(name, msp=name in msp) for name in args.accounts.split(",")]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator = Emulator(
        seed=args.seed, events=args.events, accounts=specs, latency_ms=args.latency_ms
    ).start()
    try:
        print(json.dumps(emulator.describe()), flush=True)
        while not stop.wait(3600):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
