"""meltano.yml and the README stay true to the tap and installable without Meltano Hub."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tap_onepassword.tap import TapOnePassword

from .conftest import MELTANO, PROJECT_ROOT

TAP = str(Path(sys.executable).with_name("tap-onepassword"))


def project() -> dict[str, Any]:
    """Return meltano.yml as data."""
    loaded: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text())
    return loaded


def about() -> dict[str, Any]:
    """Return the tap's own description of its settings and capabilities."""
    done = subprocess.run(
        [TAP, "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


def test_generated_settings_match_the_tap() -> None:
    """README's table and meltano.yml's settings are what `make settings` generates now."""
    done = subprocess.run(
        [sys.executable, "scripts/sync_settings.py", "--check"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_extractor_mirrors_every_setting_and_capability() -> None:
    tap = about()
    (extractor,) = project()["plugins"]["extractors"]
    assert extractor["name"] == "tap-onepassword"
    assert extractor["pip_url"] == "-e ."
    assert sorted(extractor["capabilities"]) == sorted(tap["capabilities"])
    declared = {setting["name"]: setting for setting in extractor["settings"]}
    assert list(declared) == list(tap["settings"]["properties"])
    for name in ("token", "accounts"):
        assert declared[name].get("sensitive") is True, f"{name} must be sensitive"
    assert extractor["settings_group_validation"] == [["token"], ["accounts"]]
    # Every stream the tap selects by default, and not the opt-in ones (audit_events_v3).
    streams = TapOnePassword(config={}, validate_config=False).discover_streams()
    assert extractor["select"] == [f"{s.name}.*" for s in streams if s.selected_by_default]


def test_plugins_install_from_pypi_alone() -> None:
    """No plugin asks Meltano Hub (`variant:`); every one is pinned and names its program."""
    plugins = [plugin for kind in project()["plugins"].values() for plugin in kind]
    assert {plugin["name"] for plugin in plugins} == {
        "tap-onepassword",
        "target-jsonl",
        "target-postgres",
        "target-duckdb",
        "dbt-postgres",
        "dbt-duckdb",
    }
    for plugin in plugins:
        assert "variant" not in plugin, plugin["name"]
        assert plugin["namespace"], plugin["name"]
        assert plugin["executable"], plugin["name"]
        assert plugin["pip_url"] == "-e ." or "==" in plugin["pip_url"], plugin["name"]
        assert plugin["settings"], plugin["name"]


def test_environments_job_and_hourly_schedule() -> None:
    meltano = project()
    assert [env["name"] for env in meltano["environments"]] == ["dev", "test"]
    jobs = {job["name"]: job["tasks"] for job in meltano["jobs"]}
    postgres_job = (
        "tap-onepassword target-postgres dbt-postgres:run dbt-postgres:test dbt-postgres:freshness"
    )
    assert jobs == {
        "onepassword-to-postgres": [postgres_job],
        "onepassword-to-duckdb": ["tap-onepassword target-duckdb dbt-duckdb:run dbt-duckdb:test"],
    }
    (schedule,) = meltano["schedules"]
    assert schedule["interval"] == "@hourly"
    assert schedule["job"] == "onepassword-to-postgres"
    done = subprocess.run(
        [str(MELTANO), "schedule", "list", "--format=json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (listed,) = json.loads(done.stdout)["schedules"]["job"]
    assert listed["cron_interval"] == "0 * * * *"
    assert listed["job"]["tasks"] == [postgres_job]
