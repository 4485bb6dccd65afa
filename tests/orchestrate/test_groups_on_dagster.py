"""Account groups run by Dagster at once, each with its own state in PostgreSQL, then the models.

One emulator (with latency, so that a group's run lasts as long as its pages take to come)
serves every account; a scratch copy of the Meltano project declares three groups; `dagster
job execute` runs the groups job twice, new and late events being added in between. Meltano's
system database, the loaded tables and the dbt models built from them are in a throwaway
PostgreSQL cluster.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from onepassword_emulator import AccountSpec
from tests.orchestrate.groups_harness import (
    SCHEMA,
    STREAMS,
    deployment,
    group_step,
    state_id,
    token_variable,
)

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from onepassword_emulator import Emulator
    from tests.orchestrate.groups_harness import Execution, Postgres

pytestmark = pytest.mark.timeout(1200)

GROUPS = {"alpha": ["a1", "a2"], "beta": ["b1"], "gamma": ["c1"]}
GROUP_OF = {account: group for group, members in GROUPS.items() for account in members}
STREAM_OF_FEATURE = dict(zip(("signinattempts", "itemusages", "auditevents"), STREAMS, strict=True))
Key = tuple[str, str, str]  # (stream, account, uuid)
MARTS = "onepassword_marts"


def served(emulator: Emulator) -> set[Key]:
    """Return every event the emulator serves, keyed by stream, account and uuid."""
    return {
        (STREAM_OF_FEATURE[feature], account.name, event["uuid"])
        for account in emulator.accounts
        for feature in account.features
        for event in emulator.events(account.name, feature)
    }


def landed(conn: psycopg.Connection[Any]) -> dict[Key, datetime]:
    """Return every loaded event row with its `_sdc_batched_at`; fail on a repeated key."""
    rows: dict[Key, datetime] = {}
    for stream in STREAMS:
        for account, uuid, batched_at in conn.execute(
            f"SELECT account_name, uuid, _sdc_batched_at FROM {SCHEMA}.{stream}"
        ):
            assert (stream, account, uuid) not in rows, f"{stream}: {account} {uuid} twice"
            rows[stream, account, uuid] = batched_at
    return rows


def modelled(conn: psycopg.Connection[Any]) -> dict[Key, int]:
    """Return the events the models hold (the mart of every event), with how often each is there."""
    rows: dict[Key, int] = {}
    for stream, account, uuid in conn.execute(
        f"SELECT stream, account_name, event_uuid FROM {MARTS}.onepassword__events"
    ):
        rows[stream, account, uuid] = rows.get((stream, account, uuid), 0) + 1
    return rows


def assert_models_hold(conn: psycopg.Connection[Any], loaded: set[Key]) -> None:
    """The models were built from every loaded event, once each, and the OCSF marts with them."""
    assert modelled(conn) == dict.fromkeys(loaded, 1)
    sign_ins: dict[str, int] = {}
    for stream, account, _ in loaded:
        if stream == "sign_in_attempts":
            sign_ins[account] = sign_ins.get(account, 0) + 1
    authentication = conn.execute(
        f"SELECT account_name, count(*) FROM {MARTS}.ocsf_authentication GROUP BY account_name"
    ).fetchall()
    assert dict(authentication) == sign_ins


def data_requests(emulator: Emulator, since: int = 0) -> list[Any]:
    """Return the event-endpoint requests the emulator answered, from index `since` on."""
    return [
        request
        for request in emulator.requests[since:]
        if request.method == "POST" and request.path.startswith("/api/")
    ]


def assert_ran_at_once(execution: Execution, emulator: Emulator, groups: list[str]) -> None:
    """The migration ran first; then the groups ran at once, for Dagster and for the API."""
    migrated = execution.span("meltano_system_database")[1]
    spans = [execution.span(group_step(group)) for group in groups]
    assert all(started >= migrated for started, _ in spans)
    assert max(started for started, _ in spans) < min(ended for _, ended in spans), spans
    reading: dict[str, list[datetime]] = {}
    for request in data_requests(emulator):
        reading.setdefault(GROUP_OF[request.account], []).append(request.time)
    assert set(reading) == set(groups)
    assert max(min(times) for times in reading.values()) < min(
        max(times) for times in reading.values()
    ), "the groups did not read the API at once"


def assert_own_states(states: dict[str, dict[str, Any]], groups: list[str]) -> None:
    """Each group has its own state ID, and its bookmarks hold its own accounts only."""
    assert set(states) == {state_id(group) for group in groups}
    for group in groups:
        bookmarks = states[state_id(group)]["singer_state"]["bookmarks"]
        for stream in STREAMS:
            partitions = bookmarks[stream]["partitions"]
            assert sorted(p["context"]["account_name"] for p in partitions) == GROUPS[group]
            assert all(p.get("cursor") for p in partitions), f"{group} {stream}: no cursor"


def add_new_and_late_events(emulator: Emulator) -> set[Key]:
    """Ingest new events and late ones (older timestamps) for every account; return them."""
    before = served(emulator)
    for account in emulator.accounts:
        for feature in account.features:
            emulator.add_events(account.name, feature, 3)
            emulator.add_events(account.name, feature, 2, late=True)
    return served(emulator) - before


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    """Every group's accounts, with a latency that makes a group's reading last seconds."""
    accounts = [AccountSpec(account) for members in GROUPS.values() for account in members]
    return {"seed": 17, "events": 160, "latency_ms": 500, "accounts": accounts}


def test_groups_run_at_once_alone_in_failure_each_with_its_own_state_then_resume(
    postgres: Postgres,
    meltano_plugins: None,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    del meltano_plugins
    tokens = {account.name: account.token for account in emulator.accounts}
    # gamma's token has expired: its group fails, is retried once, and fails again.
    expired = {**tokens, "c1": emulator.mint_token("c1", exp=time.time() - 3600)}
    retry_once = {"ONEPASSWORD_GROUPS_RETRIES": "1", "ONEPASSWORD_GROUPS_RETRY_DELAY": "1"}
    groups = deployment(
        tmp_path,
        postgres,
        GROUPS,
        expired,
        base_url=emulator.base_url,
        page_size=10,
        extra_env=retry_once,
    )

    first = groups.execute()
    assert first.returncode != 0, "a run with a failed group reported success"
    assert "account 'c1': the token expired on" in first.output
    assert [attempt.outcome for attempt in first.steps[group_step("gamma")]] == [
        "STEP_UP_FOR_RETRY",
        "STEP_FAILURE",
    ]
    ran = [group for group in GROUPS if group != "gamma"]
    assert all(first.steps[group_step(group)][-1].outcome == "STEP_SUCCESS" for group in ran)
    # gamma failed while the others were still reading, and they went on.
    gamma_failed = first.steps[group_step("gamma")][0].ended
    assert all(gamma_failed < first.span(group_step(group))[1] for group in ran)
    # The migration ran first, then the other groups at once.

    assert_ran_at_once(first, emulator, ran)

    # Every event of the groups that ran landed once.
    with psycopg.connect(postgres.conninfo("warehouse")) as conn:
        loaded = landed(conn)
        # The models ran once, after the loads, although gamma failed: on what landed.
        assert_models_hold(conn, set(loaded))
    assert set(loaded) == {key for key in served(emulator) if GROUP_OF[key[1]] != "gamma"}
    assert [attempt.outcome for attempt in first.steps["models"]] == ["STEP_SUCCESS"]
    models_started = first.span("models")[0]
    assert models_started > first.steps[group_step("gamma")][-1].started
    assert models_started > max(request.time for request in data_requests(emulator))
    assert "Steps failed: ['group_gamma']" in first.output

    assert_own_states(groups.states(), ran)

    # New and late events arrive, and gamma gets a valid token. The whole job and a re-run of
    # alpha alone start at the same time, as when someone re-runs a group while the schedule
    # fires: alpha runs in one, then in the other, never twice at once. The groups that ran read
    # exactly the new events from their stored cursors; gamma catches up on all of c1's events.
    added = add_new_and_late_events(emulator)
    groups.env[token_variable("c1")] = tokens["c1"]
    seen = len(emulator.requests)

    whole, alpha_again = groups.execute_at_once([None, group_step("alpha")])
    assert whole.returncode == 0, whole.output[-4000:]
    assert alpha_again.returncode == 0, alpha_again.output[-4000:]
    assert set(alpha_again.steps) == {group_step("alpha")}
    spans = sorted([whole.span(group_step("alpha")), alpha_again.span(group_step("alpha"))])
    assert spans[0][1] <= spans[1][0], f"alpha ran twice at once: {spans}"

    requests = data_requests(emulator, seen)
    assert {request.account for request in requests} == set(tokens)
    assert all(
        isinstance(r.body, dict) and r.body.get("cursor") for r in requests if r.account != "c1"
    ), "a group read from a start time, not its stored cursor"
    with psycopg.connect(postgres.conninfo("warehouse")) as conn:
        reloaded = landed(conn)
        assert_models_hold(conn, served(emulator))
    assert set(reloaded) == served(emulator)
    assert [attempt.outcome for attempt in whole.steps["models"]] == ["STEP_SUCCESS"]
    assert whole.span("models")[0] > max(request.time for request in requests)
    loaded_again = {key for key, when in reloaded.items() if loaded.get(key) != when}
    assert loaded_again == added | {key for key in reloaded if key[1] == "c1"}
    assert_own_states(groups.states(), list(GROUPS))
