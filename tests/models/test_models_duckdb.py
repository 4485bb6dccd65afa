"""The same models on DuckDB: the demo's job, a few of the README's answers, unknown codes.

The job `onepassword-to-duckdb` (tap-onepassword -> target-duckdb -> dbt run -> dbt test) runs
once for the session; these tests read its file. The unknown-code test changes data, so it
works on a copy of the file.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from .answers import Expected, readme_questions, served_events
from .conftest import dump
from .ocsf import metadata_disagreements

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import JobRun

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def job(duckdb_job: JobRun) -> JobRun:
    """The job's run, which must have succeeded for any answer to mean something."""
    assert duckdb_job.result.returncode == 0, dump(duckdb_job.result)
    return duckdb_job


@pytest.fixture(scope="module")
def expected(job: JobRun) -> Expected:
    """The answers computed from the emulator's events."""
    return Expected(served_events(job.emulator))


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run one query on a DuckDB file, read-only."""
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_every_event_lands_and_reaches_the_models(job: JobRun, expected: Expected) -> None:
    assert job.duckdb_path is not None
    raw = sum(
        query(job.duckdb_path, f"SELECT count(*) FROM onepassword.{stream}")[0][0]
        for stream in ("sign_in_attempts", "item_usages", "audit_events")
    )
    assert raw == len(expected.events), "target-duckdb lost or duplicated events"
    (union,) = query(job.duckdb_path, "SELECT count(*) FROM onepassword_marts.onepassword__events")
    assert union == (len(expected.events),)


def test_failed_sign_ins_today(job: JobRun, expected: Expected) -> None:
    assert job.duckdb_path is not None
    today = datetime.now(timezone.utc).date()
    ((answer,),) = query(job.duckdb_path, readme_questions()[2].sql)
    if datetime.now(timezone.utc).date() != today:
        pytest.fail("UTC midnight passed during the query; run again")
    assert answer == expected.failed_on(today) > 0


@pytest.mark.parametrize(
    ("number", "method"),
    [
        (4, "failures_by_country"),
        (6, "revealed_or_copied"),
        (8, "vault_access"),
        (9, "per_account_uuid"),
    ],
)
def test_readme_answers_on_duckdb(
    job: JobRun, expected: Expected, number: int, method: str
) -> None:
    assert job.duckdb_path is not None
    answer = [tuple(row) for row in query(job.duckdb_path, readme_questions()[number].sql)]
    want = [tuple(row) for row in getattr(expected, method)()]
    assert want, f"question {number}: the emulator's events give no answer to check"
    assert answer == want, f"question {number}: {readme_questions()[number].text}"


def test_source_ip_is_text_on_duckdb(job: JobRun, expected: Expected) -> None:
    assert job.duckdb_path is not None
    rows = query(
        job.duckdb_path,
        """
        SELECT stream, count(*) FROM onepassword_marts.onepassword__events
        WHERE source_ip LIKE '203.0.113.%' GROUP BY stream ORDER BY stream""",
    )
    assert rows == expected.from_network()


def test_the_ocsf_marts_agree_on_their_metadata(job: JobRun) -> None:
    path = job.duckdb_path
    assert path is not None
    assert metadata_disagreements(lambda sql: query(path, sql)) == []


UNKNOWN_ROWS: dict[str, list[tuple[str, ...]]] = {
    # A category and type the lookup has never seen; a new type of a known category.
    "sign_in_attempts": [
        ("NEWCATEGORY0000000000000001", "brand_new_failed", "quantum_bad"),
        ("NEWTYPE00000000000000000001", "mfa_failed", "retina_bad"),
    ],
    "item_usages": [("NEWACTION000000000000000001", "teleport")],
    "audit_events": [
        ("NEWAUDIT0000000000000000001", "frobnicate", "widget"),
        ("NEWOBJECT000000000000000001", "grant", "nsa"),
    ],
}


def insert_unknown_codes(path: Path) -> None:
    """Add raw events whose codes no lookup knows, as a newer API version might send."""
    now = "now()::TIMESTAMP"
    with duckdb.connect(str(path)) as conn:
        for uuid, category, kind in UNKNOWN_ROWS["sign_in_attempts"]:
            conn.execute(
                "INSERT INTO onepassword.sign_in_attempts (account_name, uuid, timestamp, "
                "category, type, target_user, _sdc_batched_at) "
                f"VALUES ('acme', ?, {now}, ?, ?, '{{\"email\": \"new@acme.example.com\"}}', "
                f"{now})",
                [uuid, category, kind],
            )
        for uuid, action in UNKNOWN_ROWS["item_usages"]:
            conn.execute(
                "INSERT INTO onepassword.item_usages (account_name, uuid, timestamp, action, "
                f"_sdc_batched_at) VALUES ('acme', ?, {now}, ?, {now})",
                [uuid, action],
            )
        for uuid, action, object_type in UNKNOWN_ROWS["audit_events"]:
            conn.execute(
                "INSERT INTO onepassword.audit_events (account_name, uuid, timestamp, action, "
                f"object_type, _sdc_batched_at) VALUES ('acme', ?, {now}, ?, ?, {now})",
                [uuid, action, object_type],
            )


def test_unknown_codes_flow_through_labelled_unknown(
    job: JobRun,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    assert job.duckdb_path is not None
    assert job.meltano is not None
    copy = tmp_path_factory.mktemp("unknown-codes") / "warehouse.duckdb"
    shutil.copyfile(job.duckdb_path, copy)
    insert_unknown_codes(copy)
    job.meltano.env["DBT_DUCKDB_PATH"] = str(copy)
    try:
        # One dbt invocation that rebuilds and tests what reads the changed tables (the
        # lookups are already in the copy).
        rerun = job.meltano.run(
            "invoke",
            "dbt-duckdb",
            "build",
            "--select",
            "staging",
            "onepassword__events",
            "--exclude-resource-type",
            "seed",
            timeout=600,
        )
    finally:
        job.meltano.env["DBT_DUCKDB_PATH"] = str(job.duckdb_path)
    # Accepted values are warnings: new codes never fail the build or the tests...
    assert rerun.returncode == 0, dump(rerun)
    assert "Warning in test accepted_values" in rerun.output, dump(rerun)

    def row(table: str, columns: str, uuid: str) -> tuple[Any, ...]:
        ((found),) = query(
            copy, f"SELECT {columns} FROM onepassword_staging.{table} WHERE event_uuid = '{uuid}'"
        )
        return tuple(found)

    # ... and every such event is kept, labelled unknown or by its category's default.
    assert row(
        "stg_onepassword__sign_in_attempts",
        "outcome, is_success, failure_reason, ocsf_status_id",
        "NEWCATEGORY0000000000000001",
    ) == ("unknown", None, "unknown: brand_new_failed / quantum_bad", 0)
    assert row(
        "stg_onepassword__sign_in_attempts",
        "outcome, is_success, failure_reason",
        "NEWTYPE00000000000000000001",
    ) == ("failure", False, "second factor failed")
    assert row(
        "stg_onepassword__item_usages",
        "action_description, is_secret_exposure, ocsf_activity_id",
        "NEWACTION000000000000000001",
    ) == ("unknown: teleport", None, 0)
    assert row(
        "stg_onepassword__audit_events",
        "action_description, action_category, ocsf_class_uid, ocsf_activity_id",
        "NEWAUDIT0000000000000000001",
    ) == ("unknown: frobnicate on widget", "unknown", 3004, 0)
    assert row(
        "stg_onepassword__audit_events", "action_category", "NEWOBJECT000000000000000001"
    ) == ("vault_access",)
    uuids = [entry[0] for entries in UNKNOWN_ROWS.values() for entry in entries]
    found = query(
        copy,
        "SELECT count(*) FROM onepassword_marts.onepassword__events WHERE "
        f"event_uuid IN ({', '.join(repr(uuid) for uuid in uuids)})",
    )
    assert found == [(len(uuids),)]
