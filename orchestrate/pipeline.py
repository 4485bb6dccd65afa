"""The Meltano job the groups follow: what each group loads into, and what runs once after.

The project's job (`onepassword-to-postgres` by default) is the one declaration of the
pipeline: `tap-onepassword [mappers] <loader> [commands]`. Split by group, each group runs the
part up to the loader with its own extractor in place of `tap-onepassword`; the commands after
the loader (the dbt models, their tests, the freshness check) run once, after every group's
load, because they read every account's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrate.groups import BASE_EXTRACTOR, GroupsError, load_yaml, project_files

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Pipeline:
    """A Meltano job cut where its loader ends: the load part and the commands after it."""

    job: str
    load: tuple[str, ...]
    """The blocks after the extractor, up to and including the loader."""
    after_load: tuple[str, ...]
    """The blocks that follow the loader: run once, after every group's load."""

    @property
    def loader(self) -> str:
        """The loader every group's events go to."""
        return self.load[-1]


def read_pipeline(project_root: Path, job: str) -> Pipeline:
    """Return the project's job `job`, cut after its loader.

    Raises:
        GroupsError: the job is missing, or its tasks do not start with `tap-onepassword` and
            go on to a loader of the project.

    """
    jobs: dict[str, dict[str, Any]] = {}
    loaders: set[str] = set()
    for path in project_files(project_root):
        content = load_yaml(path)
        jobs.update({str(entry.get("name")): entry for entry in content.get("jobs") or []})
        plugins = content.get("plugins") or {}
        loaders.update(str(loader.get("name")) for loader in plugins.get("loaders") or [])
    if job not in jobs:
        msg = (
            f"the Meltano project declares no job {job!r} (it has: {', '.join(sorted(jobs))}): "
            f"declare one running `{BASE_EXTRACTOR} <loader> [commands]`, or set "
            "ONEPASSWORD_GROUPS_JOB to one that does"
        )
        raise GroupsError(msg)
    blocks = [
        block
        for task in jobs[job].get("tasks") or []
        for part in (task if isinstance(task, list) else [task])
        for block in str(part).split()
    ]
    loader_at = next((index for index, block in enumerate(blocks) if block in loaders), None)
    if not blocks or blocks[0] != BASE_EXTRACTOR or loader_at is None:
        msg = (
            f"Meltano job {job!r} runs `{' '.join(blocks)}`: the groups follow a job that runs "
            f"`{BASE_EXTRACTOR} <loader> [commands]`"
        )
        raise GroupsError(msg)
    return Pipeline(
        job=job,
        load=tuple(blocks[1 : loader_at + 1]),
        after_load=tuple(blocks[loader_at + 1 :]),
    )
