"""Fixtures for the model-layer tests: one whole Meltano job per warehouse, shared by a module.

dbt takes seconds to start, so each module runs its job once (module scope) and its tests
query what the job built. The programs are the ones a user runs: `meltano run` of this
repository's jobs, target-postgres or target-duckdb, dbt-postgres or dbt-duckdb, against the
emulator and a throwaway PostgreSQL cluster (the end-to-end tests' fixtures).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from onepassword_emulator import Emulator
from tests.e2e.conftest import (
    MELTANO,
    PROJECT_ROOT,
    MeltanoProject,
    MeltanoResult,
    _clean_environ,
    meltano_installed,
    postgres_cluster,
    tap_env,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.postgres import PostgresCluster


SEED = 131
EVENTS_PER_STREAM = 400
RECENT_EVENTS = 6
"""Events added per stream and account just before the job runs: 'the last hour' is not empty."""


def isolated_meltano(tmp: Path) -> MeltanoProject:
    """Return the Meltano project with its own system database and run folder under `tmp`."""
    sys_dir = tmp / "meltano-sys"
    sys_dir.mkdir(parents=True)
    for kind in ("extractors", "loaders", "utilities"):
        (sys_dir / kind).symlink_to(PROJECT_ROOT / ".meltano" / kind, target_is_directory=True)
    env = _clean_environ()
    env = {key: value for key, value in env.items() if not key.startswith("DBT_")}
    env.update(
        {
            "MELTANO_ENVIRONMENT": "test",
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "MELTANO_DATABASE_URI": f"sqlite:///{sys_dir / 'meltano.db'}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            # dbt's compiled SQL and logs stay with the test, not in the checkout (Meltano
            # reads a utility's settings from its own prefixed variables).
            **{
                f"DBT_{adapter}_{setting}_PATH": str(
                    tmp / f"dbt-{adapter.lower()}-{setting.lower()}"
                )
                for adapter in ("POSTGRES", "DUCKDB")
                for setting in ("TARGET", "LOG")
            },
        }
    )
    return MeltanoProject(env=env)


def started_emulator() -> Emulator:
    """Start the emulator the model tests read, with a few events from the last minutes."""
    emulator = Emulator(seed=SEED, events=EVENTS_PER_STREAM).start(host="127.0.0.1", port=0)
    for account in emulator.accounts:
        for feature in account.features:
            emulator.add_events(account.name, feature, RECENT_EVENTS)
    return emulator


@dataclass
class JobRun:
    """What one whole job did: the emulator it read, Meltano's output, where the models are."""

    emulator: Emulator
    result: MeltanoResult
    conninfo: str = ""
    duckdb_path: Path | None = None
    meltano: MeltanoProject | None = None


@pytest.fixture(scope="module")
def postgres_job(
    meltano_installed: None,
    postgres_cluster: PostgresCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[JobRun]:
    """Run the job `onepassword-to-postgres` (tap, target-postgres, dbt run, test, freshness)."""
    del meltano_installed
    tmp = tmp_path_factory.mktemp("postgres-job")
    meltano = isolated_meltano(tmp)
    emulator = started_emulator()
    database = postgres_cluster.create_database(
        f"models_{os.getpid()}_{tmp.name[-8:]}".lower().replace("-", "_")
    )
    meltano.env.update(tap_env(emulator, page_size=200))
    meltano.env.update(
        {
            "TARGET_POSTGRES_HOST": postgres_cluster.host,
            "TARGET_POSTGRES_PORT": str(postgres_cluster.port),
            "TARGET_POSTGRES_USER": postgres_cluster.user,
            "TARGET_POSTGRES_PASSWORD": postgres_cluster.password,
            "TARGET_POSTGRES_DATABASE": database,
        }
    )
    try:
        result = meltano.run("run", "onepassword-to-postgres", timeout=900)
        yield JobRun(
            emulator, result, conninfo=postgres_cluster.conninfo(database), meltano=meltano
        )
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def duckdb_job(
    meltano_installed: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[JobRun]:
    """Run the job `onepassword-to-duckdb` (tap, target-duckdb, dbt run, test) into one file.

    Shared by the DuckDB and report tests, which only read it (a test that changes data works
    on a copy).
    """
    del meltano_installed
    tmp = tmp_path_factory.mktemp("duckdb-job")
    meltano = isolated_meltano(tmp)
    emulator = started_emulator()
    path = tmp / "warehouse.duckdb"
    meltano.env.update(tap_env(emulator, page_size=200))
    meltano.env.update({"TARGET_DUCKDB_PATH": str(path), "DBT_DUCKDB_PATH": str(path)})
    try:
        result = meltano.run("run", "onepassword-to-duckdb", timeout=900)
        yield JobRun(emulator, result, duckdb_path=path, meltano=meltano)
    finally:
        emulator.stop()


def dump(result: MeltanoResult) -> str:
    """Return the end of a Meltano run's output, for an assertion message."""
    return json.dumps(result.output[-6000:])[1:-1].replace("\\n", "\n")


__all__ = [
    "MELTANO",
    "PROJECT_ROOT",
    "JobRun",
    "dump",
    "meltano_installed",
    "postgres_cluster",
]
