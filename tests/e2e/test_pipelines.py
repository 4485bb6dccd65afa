"""The pipelines users run, end to end: `meltano run tap-onepassword target-jsonl|target-postgres`.

Each test starts its own emulator (default three accounts: acme, globex with MSP fields,
initech without item usages), gives Meltano its own state store, and checks what landed against
what the emulator holds, event by event.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from tap_onepassword.streams import EVENT_FEATURES
from tests.e2e.conftest import tap_env

if TYPE_CHECKING:
    from collections.abc import Callable

    from onepassword_emulator import Emulator
    from tests.e2e.conftest import MeltanoProject
    from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.timeout(600)

STREAM_OF_FEATURE = {feature: name for name, feature in EVENT_FEATURES.items()}
JSONL_STATE_ID = "test:tap-onepassword-to-target-jsonl"
POSTGRES_STATE_ID = "test:tap-onepassword-to-target-postgres"
SCHEMA = "onepassword"
MICROSECOND = timedelta(microseconds=1)

Key = tuple[str, str]  # (account name, event uuid)


def emulator_events(emulator: Emulator) -> dict[str, dict[Key, dict[str, Any]]]:
    """Return every event the emulator serves (v2), by stream, keyed by (account, uuid)."""
    events: dict[str, dict[Key, dict[str, Any]]] = {name: {} for name in STREAM_OF_FEATURE.values()}
    for account in emulator.accounts:
        for feature in account.features:
            for event in emulator.events(account.name, feature, version="v2"):
                events[STREAM_OF_FEATURE[feature]][account.name, event["uuid"]] = event
    return events


def read_jsonl(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Return the records target-jsonl wrote, by stream (file name)."""
    return {
        path.stem: [json.loads(line) for line in path.read_text().splitlines()]
        for path in sorted(folder.glob("*.jsonl"))
    }


def keys_of(records: list[dict[str, Any]]) -> list[Key]:
    """Return the (account, uuid) key of every record, repeats included."""
    return [(record["account_name"], record["uuid"]) for record in records]


def utc_instant(timestamp: str) -> datetime:
    """Parse an RFC 3339 time (any offset, up to nanoseconds) into a naive UTC datetime (µs)."""
    head, _, fraction_and_zone = timestamp.partition(".")
    if fraction_and_zone:
        digits = "".join(ch for ch in fraction_and_zone if ch.isdigit())
        zone = fraction_and_zone[len(digits) :]
        timestamp = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return parsed.astimezone(timezone.utc).replace(tzinfo=None)


def data_requests(emulator: Emulator, since: int = 0) -> list[Any]:
    """Return the event-endpoint requests the emulator saw, from index `since` on."""
    return [
        request
        for request in emulator.requests[since:]
        if request.method == "POST" and request.path.startswith("/api/")
    ]


def assert_no_token(emulator: Emulator, *texts: str) -> None:
    """Fail if any emulator token appears in any of the given outputs."""
    for account in emulator.accounts:
        for text in texts:
            assert account.token not in text, f"the token of {account.name} leaked"


# --------------------------------------------------------------------------- target-jsonl


def test_jsonl_second_run_lands_exactly_the_new_and_late_events(
    meltano: MeltanoProject,
    start_emulator: Callable[..., Emulator],
    tmp_path: Path,
) -> None:
    emulator = start_emulator(seed=11, events=60)
    meltano.env.update(tap_env(emulator, page_size=25))
    first_events = emulator_events(emulator)

    meltano.env["TARGET_JSONL_DESTINATION_PATH"] = str(tmp_path / "run1")
    run1 = meltano.run("run", "tap-onepassword", "target-jsonl")
    assert run1.returncode == 0, run1.output[-4000:]

    landed = read_jsonl(tmp_path / "run1")
    for stream, events in first_events.items():
        keys = keys_of(landed.get(stream, []))
        assert len(keys) == len(set(keys)), f"{stream}: an event landed twice"
        assert set(keys) == set(events), f"{stream}: landed events differ from the emulator's"
    assert sorted(r["account_name"] for r in landed["introspection"]) == [
        "acme",
        "globex",
        "initech",
    ]
    state = meltano.state(JSONL_STATE_ID)
    assert set(state["singer_state"]["bookmarks"]) >= set(STREAM_OF_FEATURE.values())

    # Between the runs the API ingests new events and late ones (older timestamps).
    added: dict[str, set[Key]] = {stream: set() for stream in STREAM_OF_FEATURE.values()}
    for account in emulator.accounts:
        for feature in account.features:
            stream = STREAM_OF_FEATURE[feature]
            for late in (False, True):
                for event in emulator.add_events(account.name, feature, 4, late=late):
                    added[stream].add((account.name, event["uuid"]))
    newest_first_run = max(
        utc_instant(event["timestamp"])
        for events in first_events.values()
        for event in events.values()
    )
    added_times = [
        utc_instant(event["timestamp"])
        for stream, events in emulator_events(emulator).items()
        for key, event in events.items()
        if key in added[stream]
    ]
    assert min(added_times) < newest_first_run, "no late event was added"

    meltano.env["TARGET_JSONL_DESTINATION_PATH"] = str(tmp_path / "run2")
    run2 = meltano.run("run", "tap-onepassword", "target-jsonl")
    assert run2.returncode == 0, run2.output[-4000:]

    landed = read_jsonl(tmp_path / "run2")
    for stream, keys_added in added.items():
        keys = keys_of(landed.get(stream, []))
        assert len(keys) == len(set(keys)), f"{stream}: an event landed twice"
        assert set(keys) == keys_added, f"{stream}: second run did not land exactly the new events"
    assert len(landed["introspection"]) == len(emulator.accounts)
    assert_no_token(emulator, run1.output, run2.output, json.dumps(meltano.state(JSONL_STATE_ID)))


# --------------------------------------------------------------------------- target-postgres


def use_postgres(meltano: MeltanoProject, cluster: PostgresCluster, database: str) -> None:
    """Point target-postgres at one database of the test cluster through its env variables."""
    meltano.env.update(
        {
            "TARGET_POSTGRES_HOST": cluster.host,
            "TARGET_POSTGRES_PORT": str(cluster.port),
            "TARGET_POSTGRES_USER": cluster.user,
            "TARGET_POSTGRES_PASSWORD": cluster.password,
            "TARGET_POSTGRES_DATABASE": cluster.create_database(database),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": SCHEMA,
        }
    )


def primary_key(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """Return the primary-key columns target-postgres declared on a table."""
    rows = conn.execute(
        """SELECT a.attname FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
           WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY a.attname""",
        (f"{SCHEMA}.{table}",),
    ).fetchall()
    return [row[0] for row in rows]


def assert_tables_match(conn: psycopg.Connection[Any], emulator: Emulator) -> None:
    """Every emulator event is one row; key columns unique; nothing else in the tables."""
    for stream, events in emulator_events(emulator).items():
        key = primary_key(conn, stream)
        assert "uuid" in key, f"{stream}: primary key {key} lacks uuid"
        assert "account_name" in key, f"{stream}: primary key {key} is not unique across accounts"
        columns = ", ".join(key)
        duplicates = conn.execute(
            f"SELECT {columns}, count(*) FROM {SCHEMA}.{stream} "
            f"GROUP BY {columns} HAVING count(*) > 1",
        ).fetchall()
        assert duplicates == [], f"{stream}: duplicate primary keys {duplicates[:3]}"
        rows = conn.execute(f"SELECT account_name, uuid FROM {SCHEMA}.{stream}").fetchall()
        assert len(rows) == len(events), f"{stream}: {len(rows)} rows for {len(events)} events"
        assert set(rows) == set(events), f"{stream}: rows differ from the emulator's events"


def batched_at(conn: psycopg.Connection[Any]) -> dict[tuple[str, str, str], datetime]:
    """Return when target-postgres last loaded each event row (its `_sdc_batched_at`)."""
    return {
        (stream, account, uuid): when
        for stream in STREAM_OF_FEATURE.values()
        for account, uuid, when in conn.execute(
            f"SELECT account_name, uuid, _sdc_batched_at FROM {SCHEMA}.{stream}"
        )
    }


def test_postgres_rows_types_and_no_duplicates_after_a_reread(
    meltano: MeltanoProject,
    postgres_cluster: PostgresCluster,
    start_emulator: Callable[..., Emulator],
) -> None:
    emulator = start_emulator(seed=22, events=80)
    meltano.env.update(tap_env(emulator, page_size=30))
    use_postgres(meltano, postgres_cluster, "e2e_reread")

    run1 = meltano.run("run", "tap-onepassword", "target-postgres")
    assert run1.returncode == 0, run1.output[-4000:]

    with psycopg.connect(postgres_cluster.conninfo("e2e_reread")) as conn:
        assert_tables_match(conn, emulator)
        introspected = conn.execute(f"SELECT count(*) FROM {SCHEMA}.introspection").fetchone()
        assert introspected == (len(emulator.accounts),)

        types: dict[str, str] = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, data_type "
                "FROM information_schema.columns WHERE table_schema = %s",
                (SCHEMA,),
            ).fetchall()
        )
        for stream, events in emulator_events(emulator).items():
            # The target keeps date-times as `timestamp` without zone: right only if UTC.
            assert types[f"{stream}.timestamp"] == "timestamp without time zone"
            stored = {
                (account, uuid): (when, row)
                for account, uuid, when, row in conn.execute(
                    f"SELECT account_name, uuid, timestamp, to_jsonb(t) FROM {SCHEMA}.{stream} t"
                )
            }
            nested_seen = set()
            for key, event in events.items():
                when, row = stored[key]
                # Postgres keeps microseconds; the API sends up to nanoseconds.
                assert abs(when - utc_instant(event["timestamp"])) <= MICROSECOND, (
                    f"{stream} {key}: stored {when}, event at {event['timestamp']}"
                )
                for field, value in event.items():
                    if isinstance(value, dict):
                        nested_seen.add(field)
                        assert row[field] == value, f"{stream} {key}: {field} differs"
            assert nested_seen, f"{stream}: the emulator served no nested objects"
            for field in nested_seen:
                assert types[f"{stream}.{field}"] == "jsonb", f"{stream}.{field} is not jsonb"

        loaded_at = batched_at(conn)

    # Every stored cursor is now rejected: the tap falls back to a reset from the last
    # timestamp minus a lookback and reads again events that already landed.
    for account in emulator.accounts:
        for feature in account.features:
            emulator.add_events(account.name, feature, 5)
    emulator.rotate_secret()
    seen_before = len(emulator.requests)
    # A lookback wider than the last page (20 events, some three weeks of this data): its
    # events are dropped as already emitted (the tail memory), the earlier ones are read again.
    meltano.env["TAP_ONEPASSWORD_LOOKBACK_MINUTES"] = str(40 * 24 * 60)

    run2 = meltano.run("run", "tap-onepassword", "target-postgres")
    assert run2.returncode == 0, run2.output[-4000:]

    resets = [
        request
        for request in data_requests(emulator, seen_before)
        if isinstance(request.body, dict) and not request.body.get("cursor")
    ]
    assert resets, "the second run never re-read from a timestamp"
    with psycopg.connect(postgres_cluster.conninfo("e2e_reread")) as conn:
        assert_tables_match(conn, emulator)
        reloaded = batched_at(conn)
    # A row of the first run that the second run loaded again has a newer batch time.
    read_again = [key for key, when in loaded_at.items() if reloaded[key] != when]
    assert read_again, "no event of the first run was read again"
    assert_no_token(emulator, run1.output, run2.output)


def tap_process_of(meltano_pid: int) -> int | None:
    """Return the pid of the tap that a `meltano run` process started, if it runs yet."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == meltano_pid and any(arg.endswith(b"tap-onepassword") for arg in argv):
            return int(entry.name)
    return None


def test_tap_killed_mid_run_then_rerun_by_meltano_loses_nothing(
    meltano: MeltanoProject,
    postgres_cluster: PostgresCluster,
    start_emulator: Callable[..., Emulator],
    tmp_path: Path,
) -> None:
    emulator = start_emulator(seed=33, events=150, latency_ms=40)
    meltano.env.update(tap_env(emulator, page_size=20))
    # A STATE after every page: the kill below comes within the first second, before the
    # default cadence (one STATE every 5 s) would have written one. What is tested here is
    # that Meltano keeps what the target confirmed, and resumes from it.
    meltano.env["TAP_ONEPASSWORD_STATE_INTERVAL_SECONDS"] = "0"
    use_postgres(meltano, postgres_cluster, "e2e_kill")
    total_pages = sum(-(-len(events) // 20) for events in emulator_events(emulator).values())

    run1 = meltano.start("run", "tap-onepassword", "target-postgres", log=tmp_path / "run1.log")
    killed = False
    deadline = time.monotonic() + 240
    while run1.poll() is None and time.monotonic() < deadline:
        if len(data_requests(emulator)) >= total_pages // 2:
            tap = tap_process_of(run1.pid)
            assert tap is not None, "requests arrive but no tap process was found"
            os.kill(tap, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    assert killed, "the run ended before the tap could be killed"
    assert run1.wait(timeout=120) != 0, "Meltano reported success for a killed tap"

    # Meltano kept the checkpoint the target confirmed before the kill: a resume, not a restart.
    checkpoint = json.dumps(meltano.state(POSTGRES_STATE_ID))
    assert '"cursor"' in checkpoint, f"no cursor kept after the killed run: {checkpoint[:500]}"
    seen_before = len(emulator.requests)

    run2 = meltano.run("run", "tap-onepassword", "target-postgres")
    assert run2.returncode == 0, run2.output[-4000:]

    resumed = Counter(
        bool(isinstance(request.body, dict) and request.body.get("cursor"))
        for request in data_requests(emulator, seen_before)
    )
    assert resumed[True], "the rerun sent no stored cursor"
    with psycopg.connect(postgres_cluster.conninfo("e2e_kill")) as conn:
        assert_tables_match(conn, emulator)
    assert_no_token(emulator, (tmp_path / "run1.log").read_text(), run2.output, checkpoint)


def test_a_revoked_account_fails_the_run_while_the_others_land_and_resume(
    meltano: MeltanoProject,
    postgres_cluster: PostgresCluster,
    start_emulator: Callable[..., Emulator],
) -> None:
    emulator = start_emulator(seed=23, events=60)
    meltano.env.update(tap_env(emulator, page_size=25))
    use_postgres(meltano, postgres_cluster, "e2e_isolation")
    globex = emulator.account("globex").token
    emulator.revoke_token(globex)

    run1 = meltano.run("run", "tap-onepassword", "target-postgres")
    assert run1.returncode != 0, run1.output[-4000:]
    assert "1 of 3 accounts failed ('globex': the Events API refused the token (401)" in run1.output
    errors = [line for line in run1.output.splitlines() if "account 'globex' failed" in line]
    assert len(errors) == 1, errors
    expected = emulator_events(emulator)
    with psycopg.connect(postgres_cluster.conninfo("e2e_isolation")) as conn:
        for stream, events in expected.items():
            rows = conn.execute(f"SELECT account_name, uuid FROM {SCHEMA}.{stream}").fetchall()
            assert len(rows) == len(set(rows))
            assert set(rows) == {key for key in events if key[0] != "globex"}, stream
        loaded_at = batched_at(conn)
    state = meltano.state(POSTGRES_STATE_ID)["singer_state"]["bookmarks"]
    for stream in STREAM_OF_FEATURE.values():
        cursors = {
            partition["context"]["account_name"]: partition.get("cursor")
            for partition in state[stream]["partitions"]
        }
        assert cursors.get("acme"), f"{stream}: acme's state was not kept"
        assert not cursors.get("globex"), f"{stream}: globex has a cursor it never earned"

    # The token works again; meanwhile the API ingested new events for every account.
    emulator.restore_token(globex)
    for account in emulator.accounts:
        for feature in account.features:
            emulator.add_events(account.name, feature, 4)
    seen_before = len(emulator.requests)
    run2 = meltano.run("run", "tap-onepassword", "target-postgres")
    assert run2.returncode == 0, run2.output[-4000:]

    first_bodies: dict[tuple[str, str], Any] = {}
    for request in data_requests(emulator, seen_before):
        first_bodies.setdefault((request.account, request.path), request.body)
    assert len(first_bodies) == 8  # acme and globex: 3 streams each, initech: 2
    for (name, path), body in first_bodies.items():
        if name == "globex":
            assert set(body) >= {"limit", "start_time"}, f"{path}: globex did not start over"
        else:
            assert set(body) == {"cursor"}, f"{name} {path}: not resumed from its cursor"
    with psycopg.connect(postgres_cluster.conninfo("e2e_isolation")) as conn:
        assert_tables_match(conn, emulator)
        reloaded = batched_at(conn)
    read_again = [key for key, when in loaded_at.items() if reloaded[key] != when]
    assert read_again == [], f"events of the first run were loaded again: {read_again[:3]}"


# --------------------------------------------------------------------------- audit events v3


def test_v3_beta_lands_only_when_selected_and_twice_run_lands_each_event_once(
    meltano: MeltanoProject,
    postgres_cluster: PostgresCluster,
    start_emulator: Callable[..., Emulator],
) -> None:
    """Meltano's `select` (here from the environment) opts in; the whole event lands as jsonb."""
    emulator = start_emulator(seed=23, events=50)
    meltano.env.update(tap_env(emulator, page_size=20))
    use_postgres(meltano, postgres_cluster, "e2e_v3")
    plain = meltano.run("run", "tap-onepassword", "target-postgres")
    assert plain.returncode == 0, plain.output[-4000:]
    assert not any(r.path == "/api/v3/auditevents" for r in emulator.requests)

    meltano.env["TAP_ONEPASSWORD__SELECT"] = json.dumps(["*.*"])
    run1 = meltano.run("run", "tap-onepassword", "target-postgres")
    assert run1.returncode == 0, run1.output[-4000:]
    for account in ("acme", "initech"):
        emulator.add_events(account, "auditevents", 3)
        emulator.add_events(account, "auditevents", 2, late=True)
    run2 = meltano.run("run", "tap-onepassword", "target-postgres")
    assert run2.returncode == 0, run2.output[-4000:]

    expected = {
        (account.name, event["uuid"]): event
        for account in emulator.accounts
        for event in emulator.events(account.name, "auditevents", version="v3")
    }
    with psycopg.connect(postgres_cluster.conninfo("e2e_v3")) as conn:
        assert primary_key(conn, "audit_events_v3") == ["account_name", "event_id"]
        rows = conn.execute(
            f"SELECT account_name, event_id, event, action_verb FROM {SCHEMA}.audit_events_v3"
        ).fetchall()
        batches = conn.execute(
            f"SELECT count(DISTINCT _sdc_batched_at) FROM {SCHEMA}.audit_events_v3"
        ).fetchone()
    assert len(rows) == len(expected)
    for account, event_id, event, verb in rows:
        assert event == expected[account, event_id]
        assert verb == event["action"].rsplit(".", 1)[-1]
    assert batches is not None
    assert batches[0] >= 2, "the second run landed nothing"
    assert_no_token(emulator, run1.output, run2.output)
