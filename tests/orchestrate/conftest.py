"""Fixtures for the account-group tests: PostgreSQL, the emulator, Meltano's plugins."""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from groups_harness import BIN, PROJECT_ROOT, Postgres, throwaway_postgres

from tap_onepassword.emulator import AccountSpec, Emulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """Return a throwaway PostgreSQL cluster for the module's tests."""
    with throwaway_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def meltano_plugins() -> None:
    """Install the project's Meltano plugins (a no-op when they are up to date)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MELTANO_")}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    done = subprocess.run(
        [str(BIN / "meltano"), "install"], cwd=PROJECT_ROOT, env=env, check=False, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900,
    )
    assert done.returncode == 0, f"meltano install failed:\n{done.stdout[-3000:]}"


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
