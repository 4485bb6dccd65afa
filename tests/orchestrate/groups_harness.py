"""Running account groups through Dagster for real: the test's and `make scale-demo`'s harness.

Nothing is mocked: a throwaway PostgreSQL cluster holds Meltano's system database (its state)
and the loaded tables, a scratch copy of this repository's Meltano project declares the groups
(one inheriting extractor each, in an included file, as the README tells users to), and
`dagster job execute -m orchestrate.definitions` runs them with the multiprocess executor on a
Dagster instance configured by `orchestrate/dagster.yaml`. What Dagster recorded (each step's
start and end) is read back from that instance.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import yaml

from tests.support.postgres import PostgresCluster

if TYPE_CHECKING:
    from collections.abc import Mapping

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STATE_PREFIX = "test"
LOADER = "target-postgres"
SCHEMA = "onepassword"
STREAMS = ("sign_in_attempts", "item_usages", "audit_events")
# Variables from the caller's shell that would steer Meltano or Dagster.
_FOREIGN_ENV_PREFIXES = (
    "TAP_ONEPASSWORD",
    "TARGET_",
    "DBT_",
    "MELTANO_",
    "DAGSTER_",
    "ONEPASSWORD_",
)


Postgres = PostgresCluster
"""The throwaway cluster of `tests/support/postgres.py`, under the name these tests use."""


# --------------------------------------------------------------------------- Meltano project


def token_variable(account: str) -> str:
    """Return the environment variable that holds an account's token in the groups file."""
    return f"ONEPASSWORD_TOKEN_{account.upper().replace('-', '_')}"


def groups_file(groups: Mapping[str, list[str]]) -> dict[str, Any]:
    """Return the included Meltano file that declares the groups: one extractor block each."""
    return {
        "plugins": {
            "extractors": [
                {
                    "name": f"tap-onepassword--{group}",
                    "inherit_from": "tap-onepassword",
                    "config": {
                        "accounts": [
                            {"name": account, "token": f"${token_variable(account)}"}
                            for account in accounts
                        ]
                    },
                }
                for group, accounts in groups.items()
            ]
        }
    }


def scratch_project(folder: Path, groups: Mapping[str, list[str]]) -> Path:
    """Make a Meltano project: this repository's `meltano.yml` plus a file of groups.

    The plugins' virtualenvs and the dbt project are this repository's (linked, never
    reinstalled): the copy only adds the groups, and dbt writes its compiled files and logs
    into the copy's `.meltano/`, so a test never writes into the repository.
    """
    folder.mkdir(parents=True)
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text())
    project["include_paths"] = [*project.get("include_paths", []), "./groups.meltano.yml"]
    (folder / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    (folder / "groups.meltano.yml").write_text(yaml.safe_dump(groups_file(groups), sort_keys=False))
    (folder / "transform").symlink_to(PROJECT_ROOT / "transform", target_is_directory=True)
    system = folder / ".meltano"
    system.mkdir()
    for kind in ("extractors", "loaders", "utilities"):
        (system / kind).symlink_to(PROJECT_ROOT / ".meltano" / kind, target_is_directory=True)
    return folder


# --------------------------------------------------------------------------- Dagster


@dataclass
class StepAttempt:
    """One attempt of one step, as the Dagster instance recorded it."""

    started: datetime
    ended: datetime
    outcome: str  # STEP_SUCCESS, STEP_FAILURE or STEP_UP_FOR_RETRY


@dataclass
class Execution:
    """One `dagster job execute` of the groups job: its exit status, output and steps."""

    returncode: int
    output: str
    steps: dict[str, list[StepAttempt]] = field(default_factory=dict)

    def span(self, step: str) -> tuple[datetime, datetime]:
        """Return when a step's first attempt started and its last attempt ended."""
        attempts = self.steps[step]
        return attempts[0].started, attempts[-1].ended


@dataclass
class GroupsDeployment:
    """Everything a groups run needs: the project, the Dagster home and the environment."""

    project: Path
    dagster_home: Path
    env: dict[str, str]
    system_database: str  # libpq connection string of Meltano's system database

    def execute(self, timeout: float = 600) -> Execution:
        """Run the groups job once, to completion, and return what Dagster recorded."""
        return self.execute_at_once([None], timeout)[0]

    def execute_at_once(
        self,
        selections: list[str | None],
        timeout: float = 600,
    ) -> list[Execution]:
        """Start the groups job once per selection at the same time; wait for all of them.

        A selection names the ops to run (Dagster's `--op-selection`, e.g. one group's op, as
        a person re-running one group would); `None` runs the whole job.
        """
        known = self._run_ids()
        command = [
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "orchestrate.definitions",
            "-j",
            "onepassword_groups",
        ]
        with contextlib.ExitStack() as stack:
            logs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in selections]
            # Each in its own process group, so that a run past its time is stopped whole.
            processes = [
                subprocess.Popen(
                    [*command, *(["--op-selection", selection] if selection else [])],
                    cwd=PROJECT_ROOT,
                    env=self.env,
                    text=True,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                for selection, log in zip(selections, logs, strict=True)
            ]
            stack.callback(_stop, processes)
            deadline = time.monotonic() + timeout
            executions = []
            for process, log in zip(processes, logs, strict=True):
                returncode = process.wait(timeout=max(deadline - time.monotonic(), 0))
                log.seek(0)
                executions.append(Execution(returncode, log.read()))
        for run_id in self._run_ids():
            if run_id in known:
                continue
            for execution in executions:  # Dagster prints the run's ID on each event line
                if run_id in execution.output:
                    execution.steps = self._run_steps(run_id)
        return executions

    def states(self) -> dict[str, dict[str, Any]]:
        """Return every state Meltano's system database holds, by state ID (read from its table)."""
        with psycopg.connect(self.system_database) as conn:
            rows = conn.execute("SELECT state_id, completed_state FROM state").fetchall()
        return {
            state_id: json.loads(state) if isinstance(state, str) else state
            for state_id, state in rows
        }

    def _run_ids(self) -> list[str]:
        """Return the IDs of the runs the Dagster instance holds, oldest first."""
        from dagster import DagsterInstance  # noqa: PLC0415 - the optional extra

        with DagsterInstance.from_config(str(self.dagster_home)) as instance:
            return [run.run_id for run in reversed(instance.get_runs())]

    def _run_steps(self, run_id: str) -> dict[str, list[StepAttempt]]:
        """Read each step's attempts in one run from the Dagster instance's storage."""
        from dagster import DagsterEventType, DagsterInstance  # noqa: PLC0415 - the optional extra

        ends = {
            DagsterEventType.STEP_SUCCESS,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.STEP_UP_FOR_RETRY,
        }
        steps: dict[str, list[StepAttempt]] = {}
        started: dict[str, datetime] = {}
        with DagsterInstance.from_config(str(self.dagster_home)) as instance:
            for entry in instance.all_logs(run_id):
                event = entry.dagster_event
                if event is None or entry.step_key is None:
                    continue
                when = datetime.fromtimestamp(entry.timestamp, tz=timezone.utc)
                if event.event_type in {
                    DagsterEventType.STEP_START,
                    DagsterEventType.STEP_RESTARTED,
                }:
                    started[entry.step_key] = when
                elif event.event_type in ends:
                    steps.setdefault(entry.step_key, []).append(
                        StepAttempt(started[entry.step_key], when, event.event_type.value)
                    )
        return steps


def _stop(processes: list[subprocess.Popen[str]]) -> None:
    """Kill the process group of every process still running."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def state_id(group: str) -> str:
    """Return the state ID Meltano gives a group's pipeline."""
    return f"{STATE_PREFIX}:tap-onepassword--{group}-to-{LOADER}"


def group_step(group: str) -> str:
    """Return the Dagster step key of a group's op."""
    return f"group_{group.replace('-', '_')}"


def deployment(  # noqa: PLR0913 - everything a deployment is made of, spelled out
    folder: Path,
    cluster: Postgres,
    groups: Mapping[str, list[str]],
    tokens: Mapping[str, str],
    *,
    base_url: str,
    page_size: int,
    extra_env: Mapping[str, str] | None = None,
) -> GroupsDeployment:
    """Set up a groups deployment in `folder`: state and tables in `cluster`, tokens given."""
    project = scratch_project(folder / "project", groups)
    dagster_home = folder / "dagster-home"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / "orchestrate" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(_FOREIGN_ENV_PREFIXES)
    }
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "DAGSTER_HOME": str(dagster_home),
            "MELTANO_PROJECT_ROOT": str(project),
            "MELTANO_ENVIRONMENT": STATE_PREFIX,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DATABASE_URI": cluster.sqlalchemy_url(cluster.create_database("meltano")),
            "TAP_ONEPASSWORD_BASE_URL": base_url,
            "TAP_ONEPASSWORD_PAGE_SIZE": str(page_size),
            "TARGET_POSTGRES_HOST": cluster.host,
            "TARGET_POSTGRES_PORT": str(cluster.port),
            "TARGET_POSTGRES_USER": cluster.user,
            "TARGET_POSTGRES_PASSWORD": cluster.password,
            "TARGET_POSTGRES_DATABASE": cluster.create_database("warehouse"),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": SCHEMA,
        }
    )
    env.update({token_variable(account): token for account, token in tokens.items()})
    env.update(extra_env or {})
    return GroupsDeployment(
        project=project,
        dagster_home=dagster_home,
        env=env,
        system_database=cluster.conninfo("meltano"),
    )
