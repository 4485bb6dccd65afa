"""What the pipeline benchmark runs: a throwaway PostgreSQL server, target-postgres and Meltano.

``bench.py --only pipeline`` uses these to measure ``meltano run tap-onepassword target-postgres``
against the loader alone (on the tap's captured output) and the tap alone, each in the same
round, so that their ratios survive a shared machine's drift.

- ``postgres_server``: the throwaway cluster the end-to-end tests use
  (``tests/support/postgres.py``: ``initdb`` and ``pg_ctl`` in a temporary folder, on a free
  loopback port, as the ``postgres`` system user when this process is root, fsync,
  synchronous commit and full-page writes off: the loader's CPU, not this machine's disk, is
  what is measured), with the server's CPU seconds read from ``/proc``.
- ``MeltanoVariant``: a copy of this project's ``meltano.yml`` in its own folder, with the
  target-postgres ``config`` block replaced (for instance by the loader's defaults). The
  plugin virtualenvs of ``.meltano/`` are linked in, so nothing is installed; each run gets a
  fresh Meltano system database, so no state is shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bench
import psycopg
import yaml

# The benchmarks run as scripts from benchmarks/: the repository itself is not on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.postgres import PostgresCluster, throwaway_postgres

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
MELTANO = Path(sys.executable).with_name("meltano")
TARGET_POSTGRES = (
    ROOT / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "target-postgres"
)
SCHEMA = "onepassword"
EVENT_TABLES = ("sign_in_attempts", "item_usages", "audit_events")

# Settings of the caller's shell that would steer a Meltano run or a plugin.
_FOREIGN_ENV_PREFIXES = ("TAP_ONEPASSWORD_", "TARGET_JSONL_", "TARGET_POSTGRES_", "MELTANO_")


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresCluster]:
    """Start the tests' throwaway cluster; a server that cannot start is one line and exit 1."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(throwaway_postgres())
        except (RuntimeError, subprocess.CalledProcessError) as error:
            sys.stderr.write(f"{error}\n")
            raise SystemExit(1) from None
        yield server


def event_rows(server: PostgresCluster, dbname: str) -> int:
    """Return how many rows the three event tables of ``dbname`` hold."""
    with psycopg.connect(server.conninfo(dbname)) as conn:
        return sum(
            int(conn.execute(f'SELECT count(*) FROM "{SCHEMA}"."{table}"').fetchone()[0])  # type: ignore[index]
            for table in EVENT_TABLES
        )


def server_cpu_seconds(server: PostgresCluster) -> float:
    """Return the CPU seconds the server used so far, its finished backends included.

    The postmaster reaps every backend, so its children's times hold theirs once they
    exit; those still running are added from their own counters.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    total = _process_ticks(postmaster, with_children=True)
    for child in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
        with contextlib.suppress(OSError):
            total += _process_ticks(int(child), with_children=True)
    return total / ticks


def loader_connection(server: PostgresCluster, dbname: str) -> dict[str, Any]:
    """Return target-postgres's connection settings for one database."""
    return {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "database": dbname,
    }


def _process_ticks(pid: int, *, with_children: bool) -> int:
    """Return a process's user + system clock ticks (and its reaped children's) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command: state is field 3; utime, stime, cutime, cstime are fields 14 to 17.
    used = int(fields[11]) + int(fields[12])
    return used + (int(fields[13]) + int(fields[14]) if with_children else 0)


def clean_environ() -> dict[str, str]:
    """Return this process's environment without settings that would steer Meltano."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(_FOREIGN_ENV_PREFIXES)
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return env


def project_loader_config() -> dict[str, Any]:
    """Return the target-postgres ``config`` block of this project's ``meltano.yml``."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (loader,) = (p for p in project["plugins"]["loaders"] if p["name"] == "target-postgres")
    return dict(loader.get("config") or {})


class MeltanoVariant:
    """This project's ``meltano.yml`` with another target-postgres config, in its own folder."""

    def __init__(self, folder: Path, *, loader_config: dict[str, Any]) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
        for loader in project["plugins"]["loaders"]:
            if loader["name"] == "target-postgres":
                loader["config"] = loader_config
        (folder / "meltano.yml").write_text(
            yaml.safe_dump(project, sort_keys=False), encoding="utf-8"
        )
        plugins = folder / ".meltano"
        plugins.mkdir(exist_ok=True)
        for kind in ("extractors", "loaders"):
            link = plugins / kind
            if not link.exists():
                link.symlink_to(ROOT / ".meltano" / kind, target_is_directory=True)
        self.runs = 0

    def run_command(self) -> list[str]:
        """Return the argv of ``meltano run tap-onepassword target-postgres``."""
        return [str(MELTANO), "run", "tap-onepassword", "target-postgres"]

    def environment(
        self, tap_env: dict[str, str], loader_connection: dict[str, Any]
    ) -> dict[str, str]:
        """Return the environment of one run: its own system database, tap and loader settings."""
        self.runs += 1
        env = clean_environ()
        env.update(tap_env)
        env.update(
            {
                f"TARGET_POSTGRES_{key.upper()}": str(value)
                for key, value in loader_connection.items()
            }
        )
        env["MELTANO_DATABASE_URI"] = f"sqlite:///{self.folder / f'meltano-{self.runs}.db'}"
        return env


def write_loader_config(
    path: Path, loader_config: dict[str, Any], connection: dict[str, Any]
) -> Path:
    """Write the config file target-postgres gets when run alone (as Meltano would write it)."""
    path.write_text(json.dumps({**loader_config, **connection}, indent=1), encoding="utf-8")
    return path


def loader_command(config: Path) -> list[str]:
    """Return the argv of target-postgres alone (Meltano's installation of it)."""
    if not TARGET_POSTGRES.exists():
        sys.stderr.write("target-postgres is not installed: run `make plugins`\n")
        raise SystemExit(1)
    return [str(TARGET_POSTGRES), "--config", str(config)]


# -- the measurement ------------------------------------------------------------------------


LOADER_CHOICES = ("default_target_schema", "load_method")
"""target-postgres settings that say where and how rows land. The "loader defaults" variant
keeps only these of meltano.yml's target-postgres config: every other key there is for speed."""


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _tap_env(config: dict[str, Any]) -> dict[str, str]:
    """Return the tap's settings as Meltano's environment variables."""
    return {
        f"TAP_ONEPASSWORD_{key.upper()}": value if isinstance(value, str) else json.dumps(value)
        for key, value in config.items()
    }


def measure_pipeline(workdir: bench.Workdir, *, events: int, repeat: int) -> dict[str, Any]:
    """Measure records/s of the tap alone, the loader alone and ``meltano run`` (medians).

    One capture of the tap's output feeds the loader-alone runs. Then each round runs, one
    after another: the tap to /dev/null; target-postgres alone on the capture, with the
    loader's defaults and with meltano.yml's settings; ``meltano run`` with a ``meltano.yml``
    of the loader's defaults, and with this project's ``meltano.yml``. Every loading run gets
    a fresh database, and must land every record. Ratios are taken within a round, then their
    median is kept.
    """
    tuned = project_loader_config()
    default = {key: value for key, value in tuned.items() if key in LOADER_CHOICES}
    loader_env = {**clean_environ(), "PGTZ": "UTC"}
    with bench.emulator(events=events) as emu, postgres_server() as server:
        since = bench.start_time()
        settings = bench.tap_config(emu, page_size=1000, since=since)
        config = workdir.write("config.json", settings)
        catalog = bench.discover(config, workdir)
        captured = workdir.path / "captured.singer"
        emu.fresh_window()
        capture = bench.run_measured(bench.tap_command(config, catalog), copy_stdout_to=captured)
        _succeeded(capture, "the tap")
        records = capture.event_records
        variants = {
            "default": MeltanoVariant(workdir.path / "default", loader_config=default),
            "tuned": MeltanoVariant(workdir.path / "tuned", loader_config=tuned),
        }
        seconds: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        server_cpus: dict[str, list[float]] = {}
        for round_number in range(repeat):
            print(f"   round {round_number + 1} of {repeat}", flush=True)
            emu.fresh_window()
            alone = bench.run_measured(bench.tap_command(config, catalog), discard_stdout=True)
            _succeeded(alone, "the tap alone")
            seconds.setdefault("tap", []).append(alone.wall)
            cpu.setdefault("tap", []).append(alone.cpu)
            for name, loader_config in (("default", default), ("tuned", tuned)):
                database = server.create_database(f"loader_{name}_{round_number}")
                loader_config_file = write_loader_config(
                    workdir.path / f"loader-{name}.json",
                    loader_config,
                    loader_connection(server, database),
                )
                server_cpu = server_cpu_seconds(server)
                run = bench.run_measured(
                    loader_command(loader_config_file),
                    stdin=captured,
                    env=loader_env,
                    discard_stdout=True,
                )
                _succeeded(run, f"target-postgres alone ({name})")
                _check_landed(server, database, records, f"target-postgres alone ({name})")
                seconds.setdefault(f"loader_{name}", []).append(run.wall)
                cpu.setdefault(f"loader_{name}", []).append(run.cpu)
                server_cpus.setdefault(f"loader_{name}", []).append(
                    server_cpu_seconds(server) - server_cpu
                )
            for name, variant in variants.items():
                emu.fresh_window()
                database = server.create_database(f"pipeline_{name}_{round_number}")
                env = variant.environment(_tap_env(settings), loader_connection(server, database))
                server_cpu = server_cpu_seconds(server)
                run = bench.run_measured(
                    variant.run_command(), env=env, cwd=variant.folder, discard_stdout=True
                )
                _succeeded(run, f"meltano run ({name})")
                _check_landed(server, database, records, f"meltano run ({name})")
                seconds.setdefault(f"pipeline_{name}", []).append(run.wall)
                cpu.setdefault(f"pipeline_{name}", []).append(run.cpu)
                server_cpus.setdefault(f"pipeline_{name}", []).append(
                    server_cpu_seconds(server) - server_cpu
                )
    rates = {kind: [records / wall for wall in walls] for kind, walls in seconds.items()}
    ratios = [
        tuned_s / default_s
        for tuned_s, default_s in zip(
            rates["pipeline_tuned"], rates["pipeline_default"], strict=True
        )
    ]
    figures: dict[str, Any] = {
        "records": records,
        "repeat": repeat,
        "loader_default_settings": default,
        "loader_tuned_settings": tuned,
        "records_per_s": {kind: _median(values) for kind, values in rates.items()},
        "all_records_per_s": {kind: [round(v) for v in values] for kind, values in rates.items()},
        # CPU of the process and the children it waited for (meltano: the tap and the loader).
        "all_cpu_s": {kind: [round(v, 1) for v in values] for kind, values in cpu.items()},
        "all_server_cpu_s": {
            kind: [round(v, 1) for v in values] for kind, values in server_cpus.items()
        },
        "tuned_over_default": _median(ratios),
        "all_tuned_over_default": [round(r, 2) for r in ratios],
        "loader_tuned_over_default": _median(
            [t / d for t, d in zip(rates["loader_tuned"], rates["loader_default"], strict=True)]
        ),
    }
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the pipeline measurement's knobs to the bench's command line."""
    parser.add_argument(
        "--pipeline-events",
        type=int,
        default=18_750,
        help="(pipeline) events per stream and account; 8 partitions (18750 = 150,000)",
    )
    parser.add_argument(
        "--pipeline-repeat", type=int, default=3, help="(pipeline) rounds; medians kept (3)"
    )


def measure_as_asked(workdir: bench.Workdir, args: argparse.Namespace) -> dict[str, Any]:
    """Run `measure_pipeline` with the command line's knobs."""
    print(">> (pipeline) meltano run into PostgreSQL, the loader alone, the tap alone", flush=True)
    return measure_pipeline(workdir, events=args.pipeline_events, repeat=args.pipeline_repeat)


def _succeeded(run: bench.ProcessRun, what: str) -> None:
    if run.returncode != 0:
        sys.stderr.write(f"{what} failed with exit status {run.returncode}:\n{run.stderr_tail}\n")
        raise SystemExit(1)


def _check_landed(server: PostgresCluster, database: str, records: int, what: str) -> None:
    landed = event_rows(server, database)
    if landed != records:
        sys.stderr.write(f"{what} landed {landed} event rows of {records}\n")
        raise SystemExit(1)


def table_rows(flow: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return the pipeline's rows of the bench table: label, value, note."""
    rate = flow["records_per_s"]
    rounds = f"median of {flow['repeat']}"
    return [
        (
            "(p) tap alone, to /dev/null: records/s",
            f"{rate['tap']:,.0f}",
            f"{flow['records']:,} records; {rounds}",
        ),
        (
            "(p) target-postgres alone, defaults",
            f"{rate['loader_default']:,.0f}",
            f"on the tap's captured output; {flow['loader_default_settings']}",
        ),
        (
            "(p) target-postgres alone, meltano.yml",
            f"{rate['loader_tuned']:,.0f}",
            f"{flow['loader_tuned_settings']}",
        ),
        ("(p) meltano run, loader defaults", f"{rate['pipeline_default']:,.0f}", rounds),
        ("(p) meltano run, meltano.yml", f"{rate['pipeline_tuned']:,.0f}", rounds),
        (
            "(p) meltano run ratio meltano.yml / defaults",
            f"{flow['tuned_over_default']:.2f}",
            f"target >= 2.5; rounds {flow['all_tuned_over_default']}",
        ),
    ]
