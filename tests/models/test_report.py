"""The report renders in a real browser: headless Chromium, every chart drawn, nothing fetched.

Writes the report from the DuckDB job's models with the command a user runs
(`scripts/report.py`), then has Debian's Chromium take a screenshot and dump the DOM after the
page's inline measuring script ran: each chart must be there, with a non-empty rendered size
and every bar it announces drawn.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from .conftest import PROJECT_ROOT, dump

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import JobRun

pytestmark = pytest.mark.timeout(900)

CHARTS = (
    "chart-sign-in-outcomes",
    "chart-failed-by-country",
    "chart-failed-by-user",
    "chart-revealed-items",
    "chart-audit-actions",
    "chart-per-account",
)
_FIGURE = re.compile(r"<figure\b[^>]*>")
_ATTRIBUTE = re.compile(r'([\w-]+)="([^"]*)"')


def chromium() -> str:
    """Return Debian's Chromium, which `make test` installs when missing."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "chromium not found: run `make test` (it installs it) or `apt-get install chromium`"
    )


def browse(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on a local page (no sandbox: CI runs as root)."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1280,1500",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def report(duckdb_job: JobRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write the report from the DuckDB job's models with `scripts/report.py`."""
    assert duckdb_job.result.returncode == 0, dump(duckdb_job.result)
    assert duckdb_job.duckdb_path is not None
    out = tmp_path_factory.mktemp("report") / "report.html"
    done = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "report.py"),
            "--duckdb",
            str(duckdb_job.duckdb_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"report:  {out}" in done.stdout
    for answer in (
        "Failed sign-ins today (UTC):",
        "Top country of failed sign-ins:",
        "Most revealed item:",
    ):
        assert answer in done.stdout
    return out


def rendered_charts(page: Path) -> dict[str, dict[str, str]]:
    """Return each chart figure's attributes from the DOM after the page's scripts ran."""
    done = browse(page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    figures = {}
    for tag in _FIGURE.findall(done.stdout):
        attributes = dict(_ATTRIBUTE.findall(tag))
        figures[attributes.get("id", "")] = attributes
    return figures


def test_every_chart_renders_in_chromium(report: Path) -> None:
    figures = rendered_charts(report)
    for chart in CHARTS:
        assert chart in figures, f"{chart} is missing from the page"
        figure = figures[chart]
        assert int(figure.get("data-rendered-width", "0")) > 100, (chart, figure)
        assert int(figure.get("data-rendered-height", "0")) > 20, (chart, figure)
        bars = int(figure["data-bars"])
        assert bars > 0, f"{chart} has no data"
        assert int(figure.get("data-rendered-bars", "-1")) == bars, (chart, figure)


def test_screenshot(report: Path) -> None:
    screenshot = report.with_suffix(".png")
    done = browse(report, f"--screenshot={screenshot}")
    assert done.returncode == 0, done.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, 1500)
    # A blank page compresses to a few kilobytes; six charts do not.
    assert len(png) > 50_000, f"the screenshot is nearly empty ({len(png)} bytes)"


def test_the_page_opens_offline(report: Path) -> None:
    text = report.read_text()
    external = re.findall(
        r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""",
        text,
        re.IGNORECASE,
    )
    assert external == [], "the report refers to something on the network"
    assert "<svg" in text


def test_without_a_warehouse_the_report_says_how_to_load_one(tmp_path: Path) -> None:
    missing = tmp_path / "warehouse.duckdb"
    run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "report.py"), "--duckdb", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert f"no DuckDB file at {missing}" in run.stderr
    assert "meltano run onepassword-to-duckdb" in run.stderr
    assert "Traceback" not in run.stderr
