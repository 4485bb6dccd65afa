"""`make scale-demo`: account groups in parallel on Dagster, next to one process reading them all.

Starts the emulator (every account with all three features, a fixed latency per request), a
throwaway PostgreSQL cluster (Meltano's system database and two warehouses), and a scratch
copy of the Meltano project with the groups declared in an included file. Then:

1. `dagster job execute -m orchestrate.definitions -j onepassword_groups`: the groups at once,
   then the dbt models once;
2. `meltano run tap-onepassword target-postgres` with every account in one extractor (no models).

Prints, per group, the events that landed and how long its step took, how long the models took,
then the same for the single process, and exits 1 if either landed other than every event once.
"""

# A command-line script: it prints, and runs this project's own programs.
# ruff: noqa: T201

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from onepassword_emulator import AccountSpec, Emulator
from tests.orchestrate.groups_harness import (
    BIN,
    SCHEMA,
    STREAMS,
    Postgres,
    deployment,
    group_step,
)
from tests.support.postgres import throwaway_postgres


def arguments() -> argparse.Namespace:
    """Parse the demo's knobs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--groups", type=int, default=3, help="number of groups (default 3)")
    parser.add_argument("--accounts-per-group", type=int, default=2, help="default 2")
    parser.add_argument(
        "--events", type=int, default=1000, help="events per stream and account (default 1000)"
    )
    parser.add_argument("--page-size", type=int, default=100, help="default 100")
    parser.add_argument(
        "--latency-ms", type=float, default=100, help="emulator latency per request (default 100)"
    )
    return parser.parse_args()


def landed_per_account(cluster: Postgres, database: str) -> dict[str, int]:
    """Return the event rows per account in one warehouse; exit if a key landed twice."""
    counts: dict[str, int] = {}
    with psycopg.connect(cluster.conninfo(database)) as conn:
        for stream in STREAMS:
            for account, rows, keys in conn.execute(
                f"SELECT account_name, count(*), count(DISTINCT uuid) "
                f"FROM {SCHEMA}.{stream} GROUP BY account_name"
            ):
                if rows != keys:
                    sys.exit(f"!! {database}: {stream} of {account} holds a repeated event")
                counts[account] = counts.get(account, 0) + rows
    return counts


def main() -> int:
    """Run the demo; return the exit status."""
    options = arguments()
    groups = {
        f"group{g + 1}": [
            f"client{g + 1}{chr(ord('a') + a)}" for a in range(options.accounts_per_group)
        ]
        for g in range(options.groups)
    }
    accounts = [account for members in groups.values() for account in members]
    print(
        f">> emulator: {len(accounts)} accounts x 3 streams x {options.events} events, "
        f"{options.latency_ms:g} ms per request, pages of {options.page_size}",
        flush=True,
    )
    emulator = Emulator(
        seed=3,
        events=options.events,
        latency_ms=options.latency_ms,
        accounts=[AccountSpec(name) for name in accounts],
    )
    emulator.start(host="127.0.0.1", port=0)
    try:
        with throwaway_postgres() as cluster:
            return compare(options, groups, emulator, cluster)
    finally:
        emulator.stop()


def compare(
    options: argparse.Namespace, groups: dict[str, list[str]], emulator: Emulator, cluster: Postgres
) -> int:
    """Run the groups on Dagster, then one process with every account; print both."""
    tokens = {account.name: account.token for account in emulator.accounts}
    folder = Path(tempfile.mkdtemp(prefix="tap-onepassword-scale-demo-"))
    setup = deployment(
        folder, cluster, groups, tokens, base_url=emulator.base_url, page_size=options.page_size
    )

    print(f">> Dagster: {len(groups)} groups at once (dagster job execute)", flush=True)
    started = time.monotonic()
    execution = setup.execute(timeout=3600)
    groups_seconds = time.monotonic() - started
    if execution.returncode != 0:
        print(execution.output[-4000:])
        return 1
    per_account = landed_per_account(cluster, "warehouse")

    print(">> one process: meltano run tap-onepassword target-postgres (every account)", flush=True)
    single_env = {
        **setup.env,
        "TAP_ONEPASSWORD_ACCOUNTS": json.dumps(
            [{"name": name, "token": token} for name, token in tokens.items()]
        ),
        "TARGET_POSTGRES_DATABASE": cluster.create_database("single"),
    }
    started = time.monotonic()
    single = subprocess.run(
        [str(BIN / "meltano"), "run", "tap-onepassword", "target-postgres"],
        cwd=setup.project,
        env=single_env,
        check=False,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    single_seconds = time.monotonic() - started
    if single.returncode != 0:
        print(single.stdout[-4000:])
        return 1
    single_per_account = landed_per_account(cluster, "single")

    expected = 3 * options.events
    print()
    print(f"   {'':<12} {'accounts':<26} {'events':>8} {'seconds':>8}")
    for group, members in groups.items():
        begun, ended = execution.span(group_step(group))
        print(
            f"   {group:<12} {', '.join(members):<26} "
            f"{sum(per_account.get(account, 0) for account in members):>8} "
            f"{(ended - begun).total_seconds():>8.1f}  (its Dagster step)"
        )
    for step, label in (("meltano_system_database", "migration"), ("models", "models")):
        begun, ended = execution.span(step)
        print(f"   {label:<12} {'':<26} {'':>8} {(ended - begun).total_seconds():>8.1f}")
    print(
        f"   {'groups job':<12} {'every group, on Dagster':<26} "
        f"{sum(per_account.values()):>8} {groups_seconds:>8.1f}  (dagster job execute, "
        "models included)"
    )
    print(
        f"   {'one process':<12} {f'all {len(tokens)} accounts':<26} "
        f"{sum(single_per_account.values()):>8} {single_seconds:>8.1f}  (meltano run)"
    )
    print()
    short = [
        account
        for account in tokens
        if per_account.get(account) != expected or single_per_account.get(account) != expected
    ]
    if short:
        print(f"!! accounts that did not land their {expected} events once: {short}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
