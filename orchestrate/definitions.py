"""Dagster definitions: every account group of the Meltano project as one op, run in parallel.

Load them with `dagster dev -m orchestrate.definitions` (or `dagster job execute -m
orchestrate.definitions -j onepassword_groups`) from the project's folder. The job
`onepassword_groups` follows the project's Meltano job `onepassword-to-postgres`
(`tap-onepassword target-postgres dbt-postgres:run dbt-postgres:test dbt-postgres:freshness`),
split by group (`orchestrate/pipeline.py`): it first brings Meltano's system database up to
date, once; then runs `meltano run tap-onepassword--<group> target-postgres` for every group at
the same time, each in its own process (the multiprocess executor); then, once every group's
load is over, runs the commands after the loader once (`meltano run dbt-postgres:run
dbt-postgres:test dbt-postgres:freshness`): the models read every account's tables. Each group
op:

- is retried on its own (`RetryPolicy`), and a group that fails for good fails alone: Dagster
  goes on with the others and marks the run failed at the end;
- claims the Dagster pool `tap-onepassword--<group>`: with the instance's pool limit at 1
  (`orchestrate/dagster.yaml`), a second run of the same group waits for the first, whichever
  run or machine started it. Meltano adds its own lock: `meltano run` refuses to start a state
  ID that another run holds (this module never passes `--force`).

The models run on what landed even when a group failed for good: its accounts keep the rows of
their earlier runs (the models are rebuilt whole every run), the other groups' new events reach
the marts, and the run is still marked failed, naming the group's step. A group op signals "my
load is over" by its output, which it yields after its last attempt, failed or not; the
executor's `step_dependency_config` starts the models op on those outputs rather than on every
group's success. A group whose step dies without yielding (its process killed) leaves the
models not run. The models op claims the pool `onepassword-models`, so two runs never rebuild
the same tables at once.

The schedule `onepassword_groups_hourly` starts the job at the top of every hour.

Environment (read when the definitions load, by the Dagster process and each step's process):
`MELTANO_PROJECT_ROOT` (default: this repository), `MELTANO_DATABASE_URI` (the shared system
database, e.g. `postgresql+psycopg://user:password@host/meltano`; Meltano reads it itself),
`ONEPASSWORD_GROUPS_JOB` (the Meltano job to follow, default `onepassword-to-postgres`; a job
with nothing after its loader gives no models op), `ONEPASSWORD_GROUPS_RETRIES` (default 2)
and `ONEPASSWORD_GROUPS_RETRY_DELAY` (seconds before the first retry, default 60; Dagster's
exponential backoff waits 2^n - 1 times that before the n-th). The groups' tokens and the
loader's settings come from the environment or `.env`, as for any Meltano run.
"""

# No `from __future__ import annotations`: Dagster reads the op's `context` annotation at run
# time and does not resolve it from a string.

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster import OpExecutionContext

from orchestrate.groups import AccountGroup, read_groups
from orchestrate.pipeline import Pipeline, read_pipeline

PROJECT_ROOT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[1])
PIPELINE = read_pipeline(
    PROJECT_ROOT, os.environ.get("ONEPASSWORD_GROUPS_JOB", "onepassword-to-postgres")
)
RETRY_POLICY = dg.RetryPolicy(
    max_retries=int(os.environ.get("ONEPASSWORD_GROUPS_RETRIES", "2")),
    delay=float(os.environ.get("ONEPASSWORD_GROUPS_RETRY_DELAY", "60")),
    backoff=dg.Backoff.EXPONENTIAL,
)
LOG_TAIL_LINES = 40
MODELS_POOL = "onepassword-models"


def meltano_executable() -> str:
    """Return the `meltano` program: the one beside this Python, else the one on PATH."""
    beside = Path(sys.executable).with_name("meltano")
    if beside.exists():
        return str(beside)
    return shutil.which("meltano") or "meltano"


def run_meltano(context: OpExecutionContext, *args: str) -> float:
    """Run one Meltano command in the project; return its duration, raise `Failure` if it fails.

    The output goes to the step's log; a failure carries the last lines of it, which name what
    went wrong (the tap's errors are one line, without tokens).
    """
    command = ["meltano", *args]
    shown = " ".join(command)
    context.log.info("running: %s (in %s)", shown, PROJECT_ROOT)
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - a fixed program with arguments from the project
        [meltano_executable(), *args],
        cwd=PROJECT_ROOT,
        check=False,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    seconds = time.monotonic() - started
    tail = "\n".join(done.stdout.splitlines()[-LOG_TAIL_LINES:])
    if done.returncode != 0:
        failed = f"`{shown}` exited with status {done.returncode}"
        context.log.error("%s; its last lines:\n%s", failed, tail)
        raise dg.Failure(
            description=failed,
            metadata={
                "output (last lines)": dg.MetadataValue.text(tail),
                "seconds": dg.MetadataValue.float(seconds),
            },
        )
    context.log.info("`%s` done in %.1f s\n%s", shown, seconds, tail)
    return seconds


@dg.op(
    description="Apply Meltano's system database migrations once, before any group starts "
    "(parallel first runs would race on them).",
    out=dg.Out(dg.Nothing),
)
def meltano_system_database(context: OpExecutionContext) -> None:
    """Bring the system database (Meltano's state backend) up to date."""
    run_meltano(context, "upgrade", "database")


def group_op(group: AccountGroup, pipeline: Pipeline) -> dg.OpDefinition:
    """Return the op that runs one group's extractor into the loader."""
    command = ("run", group.extractor, *pipeline.load)

    @dg.op(
        name=f"group_{group.identifier}",
        description=f"meltano {' '.join(command)} (accounts: {', '.join(group.accounts)})",
        ins={"system_database": dg.In(dg.Nothing)},
        out={"loaded": dg.Out(dg.Nothing, description="This group's load is over.")},
        retry_policy=RETRY_POLICY,
        pool=group.extractor,
        tags={"onepassword/group": group.name},
    )
    def run_group(context: OpExecutionContext) -> Iterator[dg.Output[None]]:
        try:
            seconds = run_meltano(context, *command)
        except dg.Failure:
            if context.retry_number < RETRY_POLICY.max_retries:
                raise
            # Failed for good: the models may run on what the other groups landed, and this
            # step still fails, which marks the run failed.
            yield dg.Output(None, "loaded")
            raise
        yield dg.Output(
            None,
            "loaded",
            metadata={
                "accounts": dg.MetadataValue.text(", ".join(group.accounts)),
                "seconds": dg.MetadataValue.float(seconds),
            },
        )

    return run_group


def after_load_op(pipeline: Pipeline) -> dg.OpDefinition:
    """Return the op that runs the job's commands after the loader (the models) once."""
    command = ("run", *pipeline.after_load)

    @dg.op(
        name="models",
        description=f"meltano {' '.join(command)}: once, after every group's load "
        f"(the commands after the loader in the Meltano job {pipeline.job})",
        ins={"groups_loaded": dg.In(dg.Nothing)},
        out=dg.Out(dg.Nothing),
        pool=MODELS_POOL,
    )
    def run_models(context: OpExecutionContext) -> None:
        seconds = run_meltano(context, *command)
        context.add_output_metadata({"seconds": dg.MetadataValue.float(seconds)})

    return run_models


def groups_job(groups: list[AccountGroup], pipeline: Pipeline) -> dg.JobDefinition:
    """Return the job: the migration, then every group at once, then the models once."""
    group_ops = [group_op(group, pipeline) for group in groups]
    models = after_load_op(pipeline) if group_ops and pipeline.after_load else None

    @dg.job(
        name="onepassword_groups",
        description="Every account group of the Meltano project, in parallel, after one "
        "system database migration; then the models, once.",
        executor_def=dg.multiprocess_executor.configured(
            {
                # Groups wait on the API, not on a core: run them all at once. Each step's
                # process is forked from a server that has imported these definitions once.
                "max_concurrent": max(len(group_ops), 1),
                "start_method": {"forkserver": {}},
                # A step starts when its inputs are there, not when every upstream step
                # succeeded: a group yields its output once its load is over, failed or not.
                "step_dependency_config": {"require_upstream_step_success": False},
            }
        ),
    )
    def onepassword_groups() -> None:
        migrated = meltano_system_database()
        loaded = [run_group(system_database=migrated) for run_group in group_ops]
        if models is not None:
            models(groups_loaded=loaded)

    return onepassword_groups


GROUPS = read_groups(PROJECT_ROOT)
JOB = groups_job(GROUPS, PIPELINE)
SCHEDULE = dg.ScheduleDefinition(
    name="onepassword_groups_hourly",
    job=JOB,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(jobs=[JOB], schedules=[SCHEDULE])
