"""Account groups run by Dagster at once, each with its own state in PostgreSQL.

One emulator (with latency, so that a group's run lasts as long as its pages take to come)
serves every account; a scratch copy of the Meltano project declares three groups; `dagster
job execute` runs the groups job twice, new and late events being added in between. Meltano's
system database and the loaded tables are in a throwaway PostgreSQL cluster.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from groups_harness import (
    SCHEMA,
    STREAMS,
    deployment,
    group_step,
    state_id,
    token_variable,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from groups_harness import Postgres

    from onepassword_emulator import Emulator

pytestmark = pytest.mark.timeout(600)

GROUPS = {"alpha": ["a1", "a2"], "beta": ["b1"], "gamma": ["c1"]}
STREAM_OF_FEATURE = dict(zip(("signinattempts", "itemusages", "auditevents"), STREAMS,
                             strict=True))
Key = tuple[str, str, str]  # (stream, account, uuid)


def served(emulator: Emulator) -> set[Key]:
    """Return every event the emulator serves, keyed by stream, account and uuid."""
    return {(STREAM_OF_FEATURE[feature], account.name, event["uuid"])
            for account in emulator.accounts for feature in account.features
            for event in emulator.events(account.name, feature)}


def landed(conn: psycopg.Connection[Any]) -> dict[Key, datetime]:
    """Return every loaded event row with its `_sdc_batched_at`; fail on a repeated key."""
    rows: dict[Key, datetime] = {}
    for stream in STREAMS:
        for account, uuid, batched_at in conn.execute(
                f"SELECT account_name, uuid, _sdc_batched_at FROM {SCHEMA}.{stream}"):
            assert (stream, account, uuid) not in rows, f"{stream}: {account} {uuid} twice"
            rows[stream, account, uuid] = batched_at
    return rows


def data_requests(emulator: Emulator, since: int = 0) -> list[Any]:
    """Return the event-endpoint requests the emulator answered, from index `since` on."""
    return [request for request in emulator.requests[since:]
            if request.method == "POST" and request.path.startswith("/api/")]


def test_groups_run_at_once_alone_in_failure_each_with_its_own_state_then_resume(
    postgres: Postgres,
    meltano_plugins: None,
    serve: Callable[..., Emulator],
    tmp_path: Path,
) -> None:
    del meltano_plugins
    accounts = [account for members in GROUPS.values() for account in members]
    emulator = serve(accounts, seed=17, events=160, latency_ms=500)
    tokens = {account.name: account.token for account in emulator.accounts}
    # gamma's token has expired: its group fails, is retried once, and fails again.
    expired = {**tokens, "c1": emulator.mint_token("c1", exp=time.time() - 3600)}
    retry_once = {"ONEPASSWORD_GROUPS_RETRIES": "1", "ONEPASSWORD_GROUPS_RETRY_DELAY": "1"}
    groups = deployment(tmp_path, postgres, GROUPS, expired, emulator.base_url, page_size=10,
                        extra_env=retry_once)

    first = groups.execute()
    assert first.returncode != 0, "a run with a failed group reported success"
    assert "account 'c1': the token expired on" in first.output
    assert [attempt.outcome for attempt in first.steps[group_step("gamma")]] == [
        "STEP_UP_FOR_RETRY", "STEP_FAILURE"]
    ran = [group for group in GROUPS if group != "gamma"]
    assert all(first.steps[group_step(group)][-1].outcome == "STEP_SUCCESS" for group in ran)
    # gamma failed while the others were still reading, and they went on.
    gamma_failed = first.steps[group_step("gamma")][0].ended
    assert all(gamma_failed < first.span(group_step(group))[1] for group in ran)

    # The migration ran once, before any group; then the groups ran at the same time, as
    # Dagster recorded their steps and as the API saw their requests.
    migrated = first.span("meltano_system_database")[1]
    spans = [first.span(group_step(group)) for group in GROUPS]
    assert all(started >= migrated for started, _ in spans)
    assert max(started for started, _ in spans) < min(ended for _, ended in spans), spans
    group_of = {account: group for group, members in GROUPS.items() for account in members}
    reading: dict[str, list[datetime]] = {}
    for request in data_requests(emulator):
        reading.setdefault(group_of[request.account], []).append(request.time)
    assert set(reading) == set(ran)
    assert max(min(times) for times in reading.values()) < min(
        max(times) for times in reading.values()), "the groups did not read the API at once"

    # Every event of the groups that ran landed once.
    with psycopg.connect(postgres.conninfo("warehouse")) as conn:
        loaded = landed(conn)
    assert set(loaded) == {key for key in served(emulator) if group_of[key[1]] != "gamma"}

    # Each group that ran has its own state, holding its own accounts only.
    states = groups.states()
    assert set(states) == {state_id(group) for group in ran}
    for group in ran:
        bookmarks = states[state_id(group)]["singer_state"]["bookmarks"]
        for stream in STREAMS:
            partitions = bookmarks[stream]["partitions"]
            assert sorted(p["context"]["account_name"] for p in partitions) == GROUPS[group]
            assert all(p.get("cursor") for p in partitions), f"{group} {stream}: no cursor"

    # New and late events arrive, and gamma gets a valid token. Two executions start at once,
    # as when a schedule fires while the last run still goes: each group runs in one, then in
    # the other, never twice at the same time. The groups that ran read exactly the new events
    # from their stored cursors; gamma catches up on all of its account's events.
    before = served(emulator)
    for account in emulator.accounts:
        for feature in account.features:
            emulator.add_events(account.name, feature, 3)
            emulator.add_events(account.name, feature, 2, late=True)
    added = served(emulator) - before
    groups.env[token_variable("c1")] = tokens["c1"]
    seen = len(emulator.requests)

    second, third = groups.execute_at_once(2)
    assert second.returncode == 0, second.output[-4000:]
    assert third.returncode == 0, third.output[-4000:]
    for group in GROUPS:
        spans = sorted([second.span(group_step(group)), third.span(group_step(group))])
        assert spans[0][1] <= spans[1][0], f"{group} ran twice at once: {spans}"

    requests = data_requests(emulator, seen)
    assert {request.account for request in requests} == set(tokens)
    assert all(isinstance(r.body, dict) and r.body.get("cursor") for r in requests
               if r.account != "c1"), "a group read from a start time, not its stored cursor"
    with psycopg.connect(postgres.conninfo("warehouse")) as conn:
        reloaded = landed(conn)
    assert set(reloaded) == served(emulator)
    loaded_again = {key for key, when in reloaded.items() if loaded.get(key) != when}
    assert loaded_again == added | {key for key in reloaded if key[1] == "c1"}
    assert set(groups.states()) == {state_id(group) for group in GROUPS}
