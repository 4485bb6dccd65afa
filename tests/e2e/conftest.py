"""Fixtures for the end-to-end tests: the real Meltano project, PostgreSQL and the emulator.

Everything here runs the programs a user runs: `meltano install` and `meltano run` on this
repository's `meltano.yml`, the PyPI loaders it pins, a throwaway PostgreSQL cluster and the
1Password Events API emulator. Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from onepassword_emulator import Emulator
from tests.support.postgres import PostgresCluster, throwaway_postgres

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MELTANO = Path(sys.executable).with_name("meltano")

# Variables from the caller's shell that would leak into a test's Meltano run.
_FOREIGN_ENV_PREFIXES = ("TAP_ONEPASSWORD_", "TARGET_JSONL_", "TARGET_POSTGRES_", "MELTANO_")


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a throwaway PostgreSQL cluster for the session and remove it afterwards.

    Its time zone is far from UTC: a date-time that lost its UTC normalisation on the way
    would land hours off.
    """
    with throwaway_postgres(timezone="Asia/Kolkata") as cluster:
        yield cluster


# --------------------------------------------------------------------------- Meltano


@dataclass
class MeltanoResult:
    """What one Meltano command did: exit status and everything it printed."""

    returncode: int
    output: str


@dataclass
class MeltanoProject:
    """This repository's Meltano project, run with an isolated system database per test."""

    env: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        """Return the argv of a Meltano command."""
        return [str(MELTANO), *args]

    def run(self, *args: str, timeout: float = 300) -> MeltanoResult:
        """Run a Meltano command to completion and return what it printed."""
        done = subprocess.run(
            self.command(*args),
            cwd=PROJECT_ROOT,
            env=self.env,
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        return MeltanoResult(done.returncode, done.stdout)

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start a Meltano command in the background, its output going to `log`."""
        with log.open("wb") as sink:
            return subprocess.Popen(
                self.command(*args),
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def state(self, state_id: str) -> dict[str, Any]:
        """Return the state Meltano holds for a state ID (empty when it holds none)."""
        done = self.run("state", "get", state_id)
        assert done.returncode == 0, done.output
        lines = [line for line in done.output.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


def _clean_environ() -> dict[str, str]:
    """Return this process's environment without settings that would steer Meltano."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(_FOREIGN_ENV_PREFIXES)
    }
    # Plugin executables resolve against the project's virtualenv first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def meltano_installed() -> None:
    """Install the Meltano plugins once per session (a no-op when they are up to date)."""
    started = time.monotonic()
    env = _clean_environ()
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    done = subprocess.run(
        [str(MELTANO), "install"],
        cwd=PROJECT_ROOT,
        env=env,
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"meltano install failed:\n{done.stdout}"
    sys.stderr.write(f"\nmeltano install: {time.monotonic() - started:.1f}s\n")


@pytest.fixture
def meltano(meltano_installed: None, tmp_path: Path) -> MeltanoProject:
    """Return the Meltano project with its own state store and run folder for this test.

    The plugin virtualenvs under `.meltano/` are shared (linked in); the system database, which
    holds Meltano's state, and the run folder, where Meltano writes each plugin's config and
    catalog, are this test's own, so neither tests nor a concurrent run in the same checkout
    see each other's bookmarks or settings.
    """
    del meltano_installed
    sys_dir = tmp_path / "meltano-sys"
    sys_dir.mkdir()
    for kind in ("extractors", "loaders"):
        (sys_dir / kind).symlink_to(PROJECT_ROOT / ".meltano" / kind, target_is_directory=True)
    env = _clean_environ()
    env.update(
        {
            "MELTANO_ENVIRONMENT": "test",
            "MELTANO_SYS_DIR_ROOT": str(sys_dir),
            "MELTANO_DATABASE_URI": f"sqlite:///{sys_dir / 'meltano.db'}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "jsonl"),
        }
    )
    return MeltanoProject(env=env)


# --------------------------------------------------------------------------- emulator


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., Emulator]]:
    """Return a factory of started emulators; every one is stopped at teardown."""
    started: list[Emulator] = []

    def factory(**options: Any) -> Emulator:
        emulator = Emulator(**options).start(host="127.0.0.1", port=0)
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        with contextlib.suppress(Exception):
            emulator.stop()


def tap_env(emulator: Emulator, page_size: int) -> dict[str, str]:
    """Return the environment that points tap-onepassword at every emulator account."""
    accounts = [{"name": account.name, "token": account.token} for account in emulator.accounts]
    return {
        "TAP_ONEPASSWORD_ACCOUNTS": json.dumps(accounts),
        "TAP_ONEPASSWORD_BASE_URL": emulator.base_url,
        "TAP_ONEPASSWORD_PAGE_SIZE": str(page_size),
    }
