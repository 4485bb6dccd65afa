"""The v3 beta's staging model: built only when asked for, one row per v3 event.

The job `onepassword-to-duckdb` runs with the opt-in stream selected (Meltano's `select`, from
the environment) and ONEPASSWORD_AUDIT_EVENTS_V3=true; the session's other DuckDB job, run as
shipped, must hold neither the stream's table nor the model.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from tests.e2e.conftest import tap_env

from .conftest import JobRun, dump, isolated_meltano, started_emulator

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(900)


def query(path: Any, sql: str) -> list[tuple[Any, ...]]:
    """Run one query on a DuckDB file, read-only."""
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def v3_job(meltano_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobRun]:
    """The DuckDB job with audit_events_v3 selected and its staging model asked for."""
    del meltano_installed
    tmp = tmp_path_factory.mktemp("duckdb-v3-job")
    meltano = isolated_meltano(tmp)
    emulator = started_emulator()
    path = tmp / "warehouse.duckdb"
    meltano.env.update(tap_env(emulator, page_size=200))
    meltano.env.update(
        {
            "TARGET_DUCKDB_PATH": str(path),
            "DBT_DUCKDB_PATH": str(path),
            "TAP_ONEPASSWORD__SELECT": json.dumps(["*.*"]),
            "ONEPASSWORD_AUDIT_EVENTS_V3": "true",
        }
    )
    try:
        result = meltano.run("run", "onepassword-to-duckdb", timeout=900)
        yield JobRun(emulator, result, duckdb_path=path, meltano=meltano)
    finally:
        emulator.stop()


def test_the_v3_staging_model_holds_every_v3_event_once(v3_job: JobRun) -> None:
    assert v3_job.result.returncode == 0, dump(v3_job.result)
    expected = {
        (account.name, event["uuid"]): event
        for account in v3_job.emulator.accounts
        for event in v3_job.emulator.events(account.name, "auditevents", version="v3")
    }
    rows = query(
        v3_job.duckdb_path,
        "SELECT account_name, event_id, action, action_verb, account_uuid, inserted_at "
        "FROM onepassword_staging.stg_onepassword__audit_events_v3",
    )
    assert len(rows) == len(expected)
    for account, event_id, action, verb, account_uuid, inserted_at in rows:
        event = expected[account, event_id]
        assert action == event["action"]
        assert verb == event["action"].rsplit(".", 1)[-1]
        assert account_uuid == event["context"]["account"]["uuid"]
        assert inserted_at is not None


def test_as_shipped_the_job_builds_no_v3_model(duckdb_job: JobRun) -> None:
    assert duckdb_job.result.returncode == 0, dump(duckdb_job.result)
    tables = {
        (schema, name)
        for schema, name in query(
            duckdb_job.duckdb_path,
            "SELECT table_schema, table_name FROM information_schema.tables",
        )
    }
    assert ("onepassword", "audit_events") in tables
    assert ("onepassword", "audit_events_v3") not in tables
    assert ("onepassword_staging", "stg_onepassword__audit_events_v3") not in tables
