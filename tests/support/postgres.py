"""A throwaway PostgreSQL 15 cluster on 127.0.0.1, wherever something loads into a real server.

The end-to-end, model and Dagster tests use it, and so do `make scale-demo` and the pipeline
benchmark (`benchmarks/pipeline.py`): it imports no pytest, and must not.

The server refuses to run as root, and CI runs as root: then initdb and the server run as the
`postgres` system user, in a temporary folder that user owns. Connections over TCP need the
password (scram-sha-256), as a real server would. Durability is off (fsync, synchronous commit,
full-page writes): the cluster is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from collections.abc import Iterator


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bin(name: str) -> str:
    """Find a PostgreSQL server program on PATH or in Debian's versioned folders."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if candidates:
        return str(candidates[-1])
    msg = (
        f"PostgreSQL server program {name!r} not found: run `make postgres` (which `make test` "
        "and `make bench` run; it installs postgresql-15) or `apt-get install postgresql-15`"
    )
    raise RuntimeError(msg)


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster listening on 127.0.0.1."""

    port: int
    password: str
    data_dir: Path
    """The cluster's files; its `postmaster.pid` names the server's process."""
    user: str = "postgres"
    host: str = "127.0.0.1"

    def conninfo(self, dbname: str = "postgres") -> str:
        """Return a libpq connection string for one database of the cluster."""
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"password={self.password} dbname={dbname}"
        )

    def sqlalchemy_url(self, dbname: str) -> str:
        """Return the SQLAlchemy URL of one database (how Meltano names its system database)."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its name."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


@contextlib.contextmanager
def throwaway_postgres(*, timezone: str | None = None) -> Iterator[PostgresCluster]:
    """Start a cluster in a temporary folder; stop and remove it afterwards.

    Args:
        timezone: The server's time zone, if not the machine's.

    Yields:
        The running cluster.

    """
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="tap-onepassword-pg-"))
    data_dir, log_file = root / "data", root / "server.log"
    cluster = PostgresCluster(
        port=free_port(), password=secrets.token_urlsafe(16), data_dir=data_dir
    )
    password_file = root / "password"
    password_file.write_text(cluster.password)
    if as_postgres:
        for path in (root, password_file):
            shutil.chown(path, user="postgres", group="postgres")
    pg_ctl = postgres_bin("pg_ctl")
    try:
        subprocess.run(
            [
                *as_postgres,
                postgres_bin("initdb"),
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
        options = (
            f"-p {cluster.port} -c listen_addresses=127.0.0.1 -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        if timezone:
            options += f" -c timezone={timezone}"
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
        if started.returncode != 0:
            log = log_file.read_text() if log_file.exists() else ""
            msg = f"PostgreSQL did not start: {started.stderr.strip()}\n{log}"
            raise RuntimeError(msg)
        yield cluster
    finally:
        subprocess.run(
            [*as_postgres, pg_ctl, "-D", str(data_dir), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
