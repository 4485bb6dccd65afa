"""Fixtures for the account-group tests: PostgreSQL and Meltano's plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.orchestrate.groups_harness import PROJECT_ROOT, Postgres
from tests.support.postgres import throwaway_postgres

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """Return a throwaway PostgreSQL cluster for the module's tests."""
    with throwaway_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def meltano_plugins() -> None:
    """Check that the project's Meltano plugins are installed (`make test` installs them)."""
    missing = [
        name
        for name in (
            "extractors/tap-onepassword",
            "loaders/target-postgres",
            "utilities/dbt-postgres",
        )
        if not (PROJECT_ROOT / ".meltano" / name / "venv").is_dir()
    ]
    if missing:
        pytest.fail(f"Meltano plugins not installed ({', '.join(missing)}): run `make plugins`")
