"""`make demo`: the job `meltano run onepassword-to-duckdb` against the emulator, then a report.

Starts the 1Password Events API emulator on a free loopback port (with a few events from the
last minutes, so "today" has some), points tap-onepassword at its three accounts through
environment variables (the way a user configures Meltano), runs the job into DuckDB
(tap-onepassword -> target-duckdb -> dbt run -> dbt test, the same models as on PostgreSQL),
prints how many events landed per stream and account, stops the emulator, writes the HTML
report and ends with its path and three answers. Each demo starts from scratch: it keeps its
own Meltano system database, warehouse and report under `output/demo/`, so running it again
gives the same kind of result and never touches the project's own state.
"""

# A command-line script, not a module: it prints, and runs this project's own programs.
# ruff: noqa: T201, INP001, S603, S608

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEMO_DIR = ROOT / "output" / "demo"
WAREHOUSE = DEMO_DIR / "warehouse.duckdb"
REPORT = DEMO_DIR / "report.html"
EVENTS_PER_STREAM = 500
RECENT_EVENTS = 20
SEED = 1
STATE_ID = "dev:tap-onepassword-to-target-duckdb"
STREAMS = ("sign_in_attempts", "item_usages", "audit_events", "introspection")


def say(message: str) -> None:
    """Print one progress line at once (make shows it while the step runs)."""
    print(f">> {message}", flush=True)


def start_emulator() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start the emulator and return the process and the JSON line it announces itself with."""
    process = subprocess.Popen(
        [
            str(BIN / "tap-onepassword-emulator"),
            "--port",
            "0",
            "--seed",
            str(SEED),
            "--events",
            str(EVENTS_PER_STREAM),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        sys.exit(f"!! the emulator did not start (exit status {process.returncode})")
    return process, json.loads(line)


def stop(process: subprocess.Popen[str]) -> None:
    """Stop a child process politely, then firmly."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def meltano_env(emulator: dict[str, Any]) -> dict[str, str]:
    """Return the environment of the demo's Meltano commands: settings as a user would set them."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAP_ONEPASSWORD_", "TARGET_DUCKDB_", "MELTANO_", "DBT_"))
    }
    accounts = [
        {"name": account["name"], "token": account["token"]} for account in emulator["accounts"]
    ]
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_DATABASE_URI": f"sqlite:///{DEMO_DIR / 'meltano.db'}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TAP_ONEPASSWORD_ACCOUNTS": json.dumps(accounts),
            # The emulator's tokens name 127.0.0.1 as their host, which is no 1Password region:
            # the base URL is given explicitly, as with a proxy or a test server.
            "TAP_ONEPASSWORD_BASE_URL": emulator["base_url"],
            "TARGET_DUCKDB_PATH": str(WAREHOUSE),
            "DBT_DUCKDB_PATH": str(WAREHOUSE),
            "DBT_DUCKDB_TARGET_PATH": str(DEMO_DIR / "dbt-target"),
            "DBT_DUCKDB_LOG_PATH": str(DEMO_DIR / "dbt-logs"),
        }
    )
    return env


def add_recent_events(emulator: dict[str, Any]) -> None:
    """Have the emulator ingest a few events per stream now (its control API)."""
    for account in emulator["accounts"]:
        for feature in account["features"]:
            body = json.dumps(
                {"account": account["name"], "feature": feature, "count": RECENT_EVENTS}
            ).encode()
            request = urllib.request.Request(  # noqa: S310 - the emulator on loopback
                f"{emulator['base_url']}/_emulator/events",
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                pass


def summarise() -> None:
    """Print the events that landed per stream and account, and where they are."""
    import duckdb  # noqa: PLC0415 - installed with the project's report extra

    with duckdb.connect(str(WAREHOUSE), read_only=True) as warehouse:
        rows = []
        for stream in STREAMS:
            per_account = warehouse.execute(
                f"SELECT account_name, count(*) FROM onepassword.{stream} GROUP BY 1 ORDER BY 1",
            ).fetchall()
            detail = ", ".join(f"{name} {count}" for name, count in per_account)
            rows.append((stream, sum(count for _, count in per_account), detail))
    width = max(len(stream) for stream, _, _ in rows)
    print()
    print(f"   {'stream':<{width}}  {'records':>7}  per account")
    for stream, total, detail in rows:
        print(f"   {stream:<{width}}  {total:>7}  {detail}")
    print()
    print(
        f"   warehouse: {WAREHOUSE.relative_to(ROOT)} (raw streams in schema onepassword, models "
        "in onepassword_staging, onepassword_marts, onepassword_lookups)"
    )
    print(f"   log:       {(DEMO_DIR / 'meltano.log').relative_to(ROOT)}")
    print(
        f"   state:     kept by Meltano under the ID {STATE_ID} in "
        f"{(DEMO_DIR / 'meltano.db').relative_to(ROOT)}"
    )
    print()


def tap_warnings(log_text: str) -> list[str]:
    """Return the tap's warnings from Meltano's log (e.g. a stream skipped for an account)."""
    marker = "tap-onepassword "
    return [
        line.split(marker, 1)[1].strip()
        for line in log_text.splitlines()
        if "[warning" in line and marker in line
    ]


def main() -> int:
    """Run the demo; return the exit status."""
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)

    say(
        f"starting the 1Password Events API emulator "
        f"(seed {SEED}, {EVENTS_PER_STREAM} events per stream and account)"
    )
    emulator_process, emulator = start_emulator()
    tokens = [account["token"] for account in emulator["accounts"]]
    try:
        names = ", ".join(
            f"{account['name']} ({'/'.join(account['features'])})"
            for account in emulator["accounts"]
        )
        say(f"emulator on {emulator['base_url']} with accounts {names}")
        add_recent_events(emulator)
        say(
            "running: meltano run onepassword-to-duckdb "
            "(tap-onepassword target-duckdb dbt-duckdb:run dbt-duckdb:test)"
        )
        started = time.monotonic()
        log_path = DEMO_DIR / "meltano.log"
        with log_path.open("w") as log:
            done = subprocess.run(
                [str(BIN / "meltano"), "run", "onepassword-to-duckdb"],
                cwd=ROOT,
                env=meltano_env(emulator),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        log_text = log_path.read_text()
        if any(token in log_text for token in tokens):
            sys.exit(f"!! a token appears in {log_path}: stop and report this")
        if done.returncode != 0:
            print("\n".join(log_text.splitlines()[-25:]))
            say(f"the pipeline failed (exit status {done.returncode}); full log: {log_path}")
            return 1
        say(f"pipeline finished in {time.monotonic() - started:.1f}s")
        summarise()
        for warning in tap_warnings(log_text):
            print(f"   tap warning: {warning}")
    finally:
        stop(emulator_process)
        say("emulator stopped")
    say("writing the report: scripts/report.py")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "report.py"),
            "--duckdb",
            str(WAREHOUSE),
            "--out",
            str(REPORT),
        ],
        cwd=ROOT,
        check=False,
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
