"""The package installs its console script, and its wheel carries the tap alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_console_script_prints_about() -> None:
    # The script pip installed next to the interpreter running the tests, whether or not
    # that virtualenv's bin directory is on PATH (it is under `make test`, not under a bare
    # `.venv/bin/python -m pytest`). Not resolved: the interpreter may be a symlink.
    exe = shutil.which("tap-onepassword", path=str(Path(sys.executable).parent))
    assert exe is not None
    out = subprocess.run(
        [exe, "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    assert '"name": "tap-onepassword"' in out.stdout


def test_wheel_holds_no_emulator(tmp_path: Path) -> None:
    # Built from a copy of the sources (the emulator beside the tap, as in the repository),
    # offline, with the virtualenv's setuptools.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for folder in ("tap_onepassword", "emulator"):
        if (ROOT / folder).exists():
            shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("tap_onepassword-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(
            archive.read(n).decode() for n in names if n.endswith("entry_points.txt")
        )
    assert "tap_onepassword/tap.py" in names
    assert [n for n in names if "emulator" in n] == []
    assert "tap-onepassword =" in entry_points
    assert "emulator" not in entry_points


def test_no_module_of_the_package_is_over_500_lines() -> None:
    sizes = {
        path.name: len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "tap_onepassword").glob("*.py")
    }
    assert "events.py" in sizes
    assert {name: lines for name, lines in sizes.items() if lines > 500} == {}
