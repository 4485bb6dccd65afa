"""Groups are read from the Meltano project's own files, and become Dagster ops as declared."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from orchestrate.groups import AccountGroup, GroupsError, read_groups
from orchestrate.pipeline import Pipeline, read_pipeline
from tests.orchestrate.groups_harness import PROJECT_ROOT, scratch_project

if TYPE_CHECKING:
    from pathlib import Path


def write_project(folder: Path, *extractor_lists: list[dict[str, Any]]) -> Path:
    """Write a meltano.yml with the first list of extractors and one included file per other."""
    folder.mkdir()
    included = [f"groups-{index}.meltano.yml" for index in range(1, len(extractor_lists))]
    (folder / "meltano.yml").write_text(
        yaml.safe_dump(
            {
                "include_paths": ["./groups-*.meltano.yml"],
                "plugins": {"extractors": [{"name": "tap-onepassword"}, *extractor_lists[0]]},
            }
        )
    )
    for name, extractors in zip(included, extractor_lists[1:], strict=True):
        (folder / name).write_text(yaml.safe_dump({"plugins": {"extractors": extractors}}))
    return folder


def group(name: str, *accounts: str, inherit_from: str = "tap-onepassword") -> dict[str, Any]:
    """Return the extractor block that declares one group."""
    return {
        "name": f"tap-onepassword--{name}",
        "inherit_from": inherit_from,
        "config": {
            "accounts": [{"name": account, "token": f"${account.upper()}"} for account in accounts]
        },
    }


def test_groups_come_from_meltano_yml_and_its_included_files(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project",
        [group("north", "acme", "globex"), {"name": "tap-other", "inherit_from": "tap-x"}],
        [group("south-2", "initech")],
    )
    assert read_groups(project) == [
        AccountGroup("tap-onepassword--north", ("acme", "globex")),
        AccountGroup("tap-onepassword--south-2", ("initech",)),
    ]
    assert [g.identifier for g in read_groups(project)] == ["north", "south_2"]


@pytest.mark.parametrize(
    ("extractors", "message"),
    [
        (
            [group("a", "acme"), group("b", "globex", "acme")],
            "account 'acme' is in groups 'a' and 'b'",
        ),
        (
            [{"name": "tap-onepassword--empty", "inherit_from": "tap-onepassword"}],
            "'tap-onepassword--empty' must list its accounts",
        ),
        (
            [group("x", "acme", inherit_from="tap-other")],
            "'tap-onepassword--x' must set `inherit_from: tap-onepassword`",
        ),
        ([group("Upper", "acme")], "a group name is lower-case letters"),
    ],
)
def test_a_declaration_that_cannot_run_safely_is_refused_with_one_line(
    tmp_path: Path,
    extractors: list[dict[str, Any]],
    message: str,
) -> None:
    project = write_project(tmp_path / "project", extractors)
    with pytest.raises(GroupsError, match=r"^[^\n]*$") as refused:
        read_groups(project)
    assert message in str(refused.value)


def test_the_groups_follow_the_meltano_job_cut_after_its_loader(tmp_path: Path) -> None:
    assert read_pipeline(PROJECT_ROOT, "onepassword-to-postgres") == Pipeline(
        job="onepassword-to-postgres",
        load=("target-postgres",),
        after_load=("dbt-postgres:run", "dbt-postgres:test", "dbt-postgres:freshness"),
    )
    # A mapper stays with the load; tasks given as lists and as several strings read alike.
    project = write_project(tmp_path / "project", [])
    meltano_yml = yaml.safe_load((project / "meltano.yml").read_text())
    meltano_yml["plugins"]["loaders"] = [{"name": "warehouse"}]
    meltano_yml["jobs"] = [
        {"name": "mapped", "tasks": [["tap-onepassword", "hash-emails warehouse"], "dbt:run"]},
        {"name": "load-only", "tasks": ["tap-onepassword warehouse"]},
    ]
    (project / "meltano.yml").write_text(yaml.safe_dump(meltano_yml))
    mapped = read_pipeline(project, "mapped")
    assert (mapped.load, mapped.loader, mapped.after_load) == (
        ("hash-emails", "warehouse"),
        "warehouse",
        ("dbt:run",),
    )
    assert read_pipeline(project, "load-only").after_load == ()


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ("absent", "the Meltano project declares no job 'absent' (it has: "),
        ("no-loader", "Meltano job 'no-loader' runs `tap-onepassword dbt:run`: the groups follow"),
        ("other-tap", "Meltano job 'other-tap' runs `tap-x warehouse`: the groups follow"),
    ],
)
def test_a_job_the_groups_cannot_follow_is_refused_with_one_line(
    tmp_path: Path,
    job: str,
    message: str,
) -> None:
    project = write_project(tmp_path / "project", [])
    meltano_yml = yaml.safe_load((project / "meltano.yml").read_text())
    meltano_yml["plugins"]["loaders"] = [{"name": "warehouse"}]
    meltano_yml["jobs"] = [
        {"name": "no-loader", "tasks": ["tap-onepassword dbt:run"]},
        {"name": "other-tap", "tasks": ["tap-x warehouse"]},
    ]
    (project / "meltano.yml").write_text(yaml.safe_dump(meltano_yml))
    with pytest.raises(GroupsError, match=r"^[^\n]*$") as refused:
        read_pipeline(project, job)
    assert message in str(refused.value)


def test_every_group_is_an_op_with_its_own_pool_and_retries_between_migration_and_models(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = scratch_project(tmp_path / "project", {"north": ["acme"], "south": ["globex"]})
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(project))
    monkeypatch.setenv("ONEPASSWORD_GROUPS_RETRIES", "3")
    definitions = importlib.reload(importlib.import_module("orchestrate.definitions"))

    job = definitions.defs.resolve_job_def("onepassword_groups")
    ops = {node.name: node.definition for node in job.graph.nodes}
    assert set(ops) == {"meltano_system_database", "group_north", "group_south", "models"}

    def upstream_of(name: str) -> list[str]:
        upstream = job.graph.dependency_structure.input_to_upstream_outputs_for_node(name)
        return sorted(output.node_name for outputs in upstream.values() for output in outputs)

    for name, pool in (
        ("group_north", "tap-onepassword--north"),
        ("group_south", "tap-onepassword--south"),
    ):
        assert ops[name].pool == pool
        assert ops[name].retry_policy is not None
        assert ops[name].retry_policy.max_retries == 3
        assert upstream_of(name) == ["meltano_system_database"]
        assert f"meltano run tap-onepassword--{name[6:]} target-postgres" in ops[name].description
    # The models: declared once, after every group, the commands of the Meltano job.
    assert upstream_of("models") == ["group_north", "group_south"]
    assert ops["models"].description.startswith(
        "meltano run dbt-postgres:run dbt-postgres:test dbt-postgres:freshness:"
    )
    assert ops["models"].pool == "onepassword-models"
    assert ops["models"].retry_policy is None
    assert ops["meltano_system_database"].pool is None
    assert job.executor_def.name == "multiprocess"
    schedule = definitions.defs.resolve_schedule_def("onepassword_groups_hourly")
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.job_name == "onepassword_groups"


def test_a_job_without_commands_after_its_loader_gives_no_models_op(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = scratch_project(tmp_path / "project", {"north": ["acme"]})
    meltano_yml = yaml.safe_load((project / "meltano.yml").read_text())
    meltano_yml["jobs"].append({"name": "to-jsonl", "tasks": ["tap-onepassword target-jsonl"]})
    (project / "meltano.yml").write_text(yaml.safe_dump(meltano_yml, sort_keys=False))
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(project))
    monkeypatch.setenv("ONEPASSWORD_GROUPS_JOB", "to-jsonl")
    definitions = importlib.reload(importlib.import_module("orchestrate.definitions"))

    job = definitions.defs.resolve_job_def("onepassword_groups")
    ops = {node.name: node.definition for node in job.graph.nodes}
    assert set(ops) == {"meltano_system_database", "group_north"}
    assert "meltano run tap-onepassword--north target-jsonl" in ops["group_north"].description
