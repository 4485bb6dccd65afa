"""Fixtures for the end-to-end tests: the real Meltano project, PostgreSQL and the emulator.

Everything here runs the programs a user runs: `meltano install` and `meltano run` on this
repository's `meltano.yml`, the PyPI loaders it pins, a throwaway PostgreSQL cluster and the
1Password Events API emulator. Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from onepassword_emulator import Emulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MELTANO = Path(sys.executable).with_name("meltano")

# Variables from the caller's shell that would leak into a test's Meltano run.
_FOREIGN_ENV_PREFIXES = ("TAP_ONEPASSWORD_", "TARGET_JSONL_", "TARGET_POSTGRES_", "MELTANO_")


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- PostgreSQL


def _postgres_bin(name: str) -> str:
    """Find a PostgreSQL server program on PATH or in Debian's versioned folders."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if candidates:
        return str(candidates[-1])
    pytest.fail(
        f"PostgreSQL server program {name!r} not found: run `make test` "
        "(it installs postgresql-15) or `apt-get install postgresql-15`",
    )


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster listening on 127.0.0.1, owned by the test session."""

    port: int
    password: str
    user: str = "postgres"
    host: str = "127.0.0.1"

    def conninfo(self, dbname: str = "postgres") -> str:
        """Return a libpq connection string for one database of the cluster."""
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"password={self.password} dbname={dbname}"
        )

    def create_database(self, name: str) -> str:
        """Create an empty database and return its name."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a throwaway PostgreSQL cluster for the session and remove it afterwards.

    The server refuses to run as root, and CI runs as root: then initdb and the server run as
    the `postgres` system user, in a temporary folder that user owns. Connections over TCP
    need the password (scram-sha-256), as a real server would.
    """
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="tap-onepassword-pg-"))
    if as_postgres:
        shutil.chown(root, user="postgres", group="postgres")
    data_dir, log_file = root / "data", root / "server.log"
    cluster = PostgresCluster(port=free_port(), password=secrets.token_urlsafe(16))
    password_file = root / "password"
    password_file.write_text(cluster.password)
    if as_postgres:
        shutil.chown(password_file, user="postgres", group="postgres")
    subprocess.run(
        [
            *as_postgres,
            _postgres_bin("initdb"),
            "-D",
            str(data_dir),
            "-U",
            cluster.user,
            f"--pwfile={password_file}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ],
        check=True,
        capture_output=True,
    )
    # A server time zone far from UTC: a date-time that lost its UTC normalisation on the way
    # would land hours off.
    options = (
        f"-p {cluster.port} -c listen_addresses=127.0.0.1 -k {root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c timezone=Asia/Kolkata"
    )
    pg_ctl = _postgres_bin("pg_ctl")
    started = subprocess.run(
        [
            *as_postgres,
            pg_ctl,
            "-D",
            str(data_dir),
            "-l",
            str(log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    try:
        if started.returncode != 0:
            log = log_file.read_text() if log_file.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {started.stderr.strip()}\n{log}")
        yield cluster
    finally:
        subprocess.run(
            [*as_postgres, pg_ctl, "-D", str(data_dir), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


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
