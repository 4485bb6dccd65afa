"""The whole hourly job on PostgreSQL, and the README's ten questions answered by its models.

One module-scoped run of `meltano run onepassword-to-postgres` (tap-onepassword ->
target-postgres -> dbt run -> dbt test -> dbt source freshness) against the emulator and a
throwaway PostgreSQL cluster whose time zone is not UTC; every test queries what it built and
compares with what the emulator served.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from .answers import Expected, readme_questions, served_events
from .conftest import dump
from .ocsf import metadata_disagreements

if TYPE_CHECKING:
    from .conftest import JobRun

pytestmark = pytest.mark.timeout(900)

STAGING = "onepassword_staging"
MARTS = "onepassword_marts"


@pytest.fixture(scope="module")
def job(postgres_job: JobRun) -> JobRun:
    """The job's run, which must have succeeded for any answer to mean something."""
    assert postgres_job.result.returncode == 0, dump(postgres_job.result)
    return postgres_job


@pytest.fixture(scope="module")
def expected(job: JobRun) -> Expected:
    """The answers computed from the emulator's events."""
    return Expected(served_events(job.emulator))


def query(job: JobRun, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one query in a session whose time zone is far from UTC (as the issue's analyst's)."""
    with psycopg.connect(job.conninfo) as conn:
        conn.execute("SET TIME ZONE 'America/Los_Angeles'")
        return list(conn.execute(sql, params or None).fetchall())


def test_the_job_runs_models_tests_and_freshness(job: JobRun) -> None:
    output = job.result.output
    for step in ("dbt-postgres", "Completed successfully"):
        assert step in output, f"{step!r} missing from the job's output"
    assert "source freshness" in output.lower() or "freshness of" in output.lower(), dump(
        job.result
    )
    # dbt printed a PASS line for the build, the tests and the freshness check, with no error.
    done_lines = [line for line in output.splitlines() if "Done. PASS=" in line]
    assert len(done_lines) >= 2, dump(job.result)
    assert all("ERROR=0" in line for line in done_lines), done_lines


def test_question_1_events_in_the_last_hour(job: JobRun, expected: Expected) -> None:
    sql = readme_questions()[1].sql
    before = datetime.now(timezone.utc)
    answer = dict(query(job, sql))
    after = datetime.now(timezone.utc)
    assert answer, "no event in the last hour, though the emulator added some just before"
    # The window moved while the query ran: the answer lies between the two windows' counts.
    for stream in set(answer) | set(expected.last_hour(before)):
        low = expected.last_hour(after).get(stream, 0)
        high = expected.last_hour(before).get(stream, 0)
        assert low <= answer.get(stream, 0) <= high, (stream, answer, low, high)


def test_question_2_failed_sign_ins_today(job: JobRun, expected: Expected) -> None:
    sql = readme_questions()[2].sql
    today = datetime.now(timezone.utc).date()
    ((answer,),) = query(job, sql)
    if datetime.now(timezone.utc).date() != today:
        pytest.fail("UTC midnight passed during the query; run again")
    assert answer == expected.failed_on(today)
    assert answer > 0, "the emulator added failed sign-ins today; none was counted"


@pytest.mark.parametrize(
    ("number", "method"),
    [
        (3, "failures_by_user"),
        (4, "failures_by_country"),
        (5, "without_mfa"),
        (6, "revealed_or_copied"),
        (7, "exposures_by_user"),
        (8, "vault_access"),
        (9, "per_account_uuid"),
        (10, "from_network"),
    ],
)
def test_questions_3_to_10(job: JobRun, expected: Expected, number: int, method: str) -> None:
    answer = [tuple(row) for row in query(job, readme_questions()[number].sql)]
    want = [tuple(row) for row in getattr(expected, method)()]
    assert want, f"question {number}: the emulator's events give no answer to check"
    assert answer == want, f"question {number}: {readme_questions()[number].text}"


def test_every_account_has_its_uuid_and_non_msp_accounts_get_it_from_introspection(
    job: JobRun,
) -> None:
    uuids = {account.name: account.account_uuid for account in job.emulator.accounts}
    rows = query(
        job,
        f"SELECT account_name, account_uuid, count(*) FROM {MARTS}.onepassword__events "
        "GROUP BY 1, 2",
    )
    assert {name: uuid for name, uuid, _ in rows} == uuids
    non_msp = [account.name for account in job.emulator.accounts if not account.msp]
    assert non_msp, "the emulator has no non-MSP account"


def test_typed_columns(job: JobRun) -> None:
    types = dict(
        query(
            job,
            """
        SELECT table_name || '.' || column_name, data_type FROM information_schema.columns
        WHERE table_schema = %s""",
            STAGING,
        )
    )
    for table in (
        "stg_onepassword__sign_in_attempts",
        "stg_onepassword__item_usages",
        "stg_onepassword__audit_events",
    ):
        assert types[f"{table}.event_time"] == "timestamp with time zone"
        assert types[f"{table}.event_date_utc"] == "date"
        assert types[f"{table}.source_ip"] == "inet"
    assert types["stg_onepassword__sign_in_attempts.is_success"] == "boolean"
    assert types["stg_onepassword__sign_in_attempts.is_mfa"] == "boolean"
    assert types["stg_onepassword__item_usages.is_secret_exposure"] == "boolean"
    assert types["stg_onepassword__item_usages.user_email"] == "text"
    assert types["stg_onepassword__audit_events.session_login_time"] == "timestamp with time zone"


def test_json_nulls_are_sql_nulls(job: JobRun, expected: Expected) -> None:
    without_details = sum(1 for event in expected.sign_ins if event.body.get("details") is None)
    assert 0 < without_details < len(expected.sign_ins)
    ((nulls,),) = query(
        job,
        f"SELECT count(*) FROM {STAGING}.stg_onepassword__sign_in_attempts "
        "WHERE details_value IS NULL",
    )
    assert nulls == without_details
    without_location = sum(1 for event in expected.usages if "location" not in event.body)
    ((missing,),) = query(
        job,
        f"SELECT count(*) FROM {STAGING}.stg_onepassword__item_usages "
        "WHERE location_country IS NULL",
    )
    assert missing == without_location


def test_event_times_are_the_served_instants(job: JobRun, expected: Expected) -> None:
    stored = dict(query(job, f"SELECT event_key, event_time FROM {MARTS}.onepassword__events"))
    assert len(stored) == len(expected.events)
    for event in expected.events:
        when = stored[f"{event.account_name}:{event.body['uuid']}"]
        assert abs((when - event.time).total_seconds()) < 1e-6, event.body["timestamp"]


def test_first_seen_country(job: JobRun, expected: Expected) -> None:
    rows = query(
        job,
        f"SELECT account_uuid, user_uuid, first_seen_country "
        f"FROM {MARTS}.onepassword__user_first_seen_country",
    )
    assert {(account, user): country for account, user, country in rows} == (
        expected.first_seen_countries()
    )


def test_ocsf_tables_carry_the_required_attributes(job: JobRun, expected: Expected) -> None:
    required = (
        "class_uid",
        "category_uid",
        "activity_id",
        "type_uid",
        "severity_id",
        "time",
        "metadata_product_name",
    )
    for table, count, classes in (
        ("ocsf_authentication", len(expected.sign_ins), {3002}),
        ("ocsf_web_resources_activity", len(expected.usages), {6001}),
        ("ocsf_audit_activity", len(expected.audits), {3001, 3004, 3005, 3006}),
    ):
        nulls = " OR ".join(f'"{column}" IS NULL' for column in required)
        rows = query(
            job,
            f"""
            SELECT count(*), count(*) FILTER (WHERE {nulls}),
                   count(*) FILTER (WHERE type_uid <> class_uid * 100 + activity_id),
                   array_agg(DISTINCT class_uid),
                   count(*) FILTER (WHERE metadata -> 'product' ->> 'name' <> metadata_product_name)
            FROM {MARTS}.{table}""",
        )
        ((total, missing, bad_type, seen_classes, bad_metadata),) = rows
        assert total == count, table
        assert (missing, bad_type, bad_metadata) == (0, 0, 0), table
        assert set(seen_classes) <= classes, (table, seen_classes)
    failed = query(job, f"SELECT count(*) FROM {MARTS}.ocsf_authentication WHERE status_id = 2")
    assert failed == [(len(expected.failed),)]
    grants = query(
        job,
        f"SELECT count(*) FROM {MARTS}.ocsf_audit_activity "
        "WHERE class_uid = 3005 AND activity_id = 1",
    )
    # Assign Privileges: vault access granted to a user or group, or a permission role given.
    assigned = {("grant", "uva"), ("grant", "gva"), ("role", "pm")}
    assert grants == [
        (
            sum(
                1
                for event in expected.audits
                if (event.body["action"], event.body["object_type"]) in assigned
            ),
        )
    ]


def test_the_ocsf_marts_agree_on_their_metadata(job: JobRun) -> None:
    assert metadata_disagreements(lambda sql: query(job, sql)) == []


def test_indexes_for_the_usual_filters(job: JobRun) -> None:
    indexed = {
        (table, columns)
        for table, columns in query(
            job,
            """
            SELECT c.relname, string_agg(a.attname, ',' ORDER BY k.position)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
            WHERE n.nspname IN (%s, %s)
            GROUP BY i.indexrelid, c.relname""",
            STAGING,
            MARTS,
        )
    }
    for columns in ("account_uuid,event_time", "user_uuid,event_time", "vault_uuid,event_time"):
        assert ("onepassword__events", columns) in indexed, columns
    assert ("stg_onepassword__item_usages", "vault_uuid,event_time") in indexed
    assert ("stg_onepassword__sign_in_attempts", "account_uuid,event_time") in indexed
