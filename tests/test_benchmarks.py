"""The benchmarks share the tests' throwaway PostgreSQL cluster, and start without pytest.

`make bench` runs `benchmarks/bench.py` as a script; its pipeline case loads into the cluster
of `tests/support/postgres.py`, the one the end-to-end tests use. A second copy of that code
would drift from the first, and a benchmark that needed the test runner to start would not
run where only the benchmark's own dependencies are installed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CLUSTER = ROOT / "tests" / "support" / "postgres.py"
SOURCES = ("tap_onepassword", "emulator", "orchestrate", "benchmarks", "scripts", "tests")
SERVER_PROGRAMS = {"initdb", "pg_ctl"}


def _server_program_names(path: Path) -> set[str]:
    """Return the PostgreSQL server programs a module names as a string of its own."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in SERVER_PROGRAMS
    }


def test_one_module_starts_a_postgresql_cluster() -> None:
    starters = {
        path.relative_to(ROOT).as_posix()
        for folder in SOURCES
        for path in (ROOT / folder).rglob("*.py")
        if path != Path(__file__).resolve() and _server_program_names(path)
    }
    assert starters == {SHARED_CLUSTER.relative_to(ROOT).as_posix()}


def test_the_benchmark_starts_where_pytest_cannot_be_imported(tmp_path: Path) -> None:
    # Modules named like pytest's, first on the path, that refuse to be imported.
    for name in ("pytest", "_pytest"):
        (tmp_path / f"{name}.py").write_text(
            f'raise ImportError("the benchmarks imported {name}")\n', encoding="utf-8"
        )
    # `--help` builds the whole command line, for which bench.py imports the pipeline case.
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--help"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--pipeline-events" in done.stdout
