"""Fixtures for the account-group tests: PostgreSQL, the emulator, Meltano's plugins."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from groups_harness import PROJECT_ROOT, Postgres, throwaway_postgres

from onepassword_emulator import AccountSpec, Emulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


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
        for name in ("extractors/tap-onepassword", "loaders/target-postgres")
        if not (PROJECT_ROOT / ".meltano" / name / "venv").is_dir()
    ]
    if missing:
        pytest.fail(f"Meltano plugins not installed ({', '.join(missing)}): run `make plugins`")


@pytest.fixture
def serve() -> Iterator[Callable[..., Emulator]]:
    """Return a factory of emulators serving the named accounts; all are stopped at teardown."""
    started: list[Emulator] = []

    def factory(accounts: list[str], **options: Any) -> Emulator:
        emulator = Emulator(accounts=[AccountSpec(name) for name in accounts], **options)
        started.append(emulator.start(host="127.0.0.1", port=0))
        return emulator

    yield factory
    for emulator in started:
        with contextlib.suppress(Exception):
            emulator.stop()
