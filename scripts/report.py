"""`make report`: one self-contained HTML page of charts from the models' marts.

Reads the dbt models (`transform/`) in DuckDB (`--duckdb FILE`, what `make demo` builds) or
PostgreSQL (`--postgres CONNINFO`) and writes one HTML file whose charts are inline SVG: no
script, font, style sheet or image comes from anywhere else, so it opens offline. Charts:
sign-in outcomes per day, failed sign-ins by country and by user, the most revealed or copied
items, audit actions by kind per account, and events per account and stream. Prints the page's
path and three answers (failed sign-ins today, top country of failed sign-ins, most revealed
item).
"""

# A command-line script, not a module: it prints. Its SQL is built from this file's own
# constants (schema names, limits), never from input: values go in as parameters.
# ruff: noqa: T201, INP001, S608

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
STAGING = "onepassword_staging"
MARTS = "onepassword_marts"
DAYS = 30
TOP = 10
LABEL_CHARS = 30
HALF_WIDTH = 560
"""Width in pixels of a chart that shares its row with another; FULL_WIDTH spans the page."""
FULL_WIDTH = 1140
PALETTE = (
    "#2563eb",
    "#dc2626",
    "#16a34a",
    "#d97706",
    "#7c3aed",
    "#0891b2",
    "#db2777",
    "#65a30d",
    "#475569",
    "#ea580c",
    "#0d9488",
    "#9333ea",
)
OUTCOME_COLOURS = {"success": "#16a34a", "failure": "#dc2626", "unknown": "#94a3b8"}
"""Sign-in outcomes in the order their columns stack, with their usual colours."""


class Warehouse:
    """Read-only queries against the models in DuckDB or PostgreSQL, with `%s` parameters."""

    def __init__(self, *, duckdb_path: Path | None = None, conninfo: str | None = None) -> None:
        """Open the DuckDB file read-only, or connect to PostgreSQL."""
        self.label = f"DuckDB file {duckdb_path.name}" if duckdb_path else "PostgreSQL"
        self._duckdb = None
        self._postgres = None
        if duckdb_path is not None:
            import duckdb  # noqa: PLC0415 - only the warehouse in use need be installed

            if not duckdb_path.exists():
                sys.exit(
                    f"report: no DuckDB file at {duckdb_path}: load it first with "
                    "`.venv/bin/meltano run onepassword-to-duckdb`, or pass the demo's with "
                    '`make report REPORT_ARGS="--duckdb output/demo/warehouse.duckdb"` '
                    "(`make demo` already wrote its report to output/demo/report.html)"
                )
            self._duckdb = duckdb.connect(str(duckdb_path), read_only=True)
        else:
            import psycopg  # noqa: PLC0415

            self._postgres = psycopg.connect(conninfo or "")

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:  # noqa: ANN401
        """Return every row of a query."""
        if self._duckdb is not None:
            return self._duckdb.execute(sql.replace("%s", "?"), list(params)).fetchall()
        assert self._postgres is not None
        return list(self._postgres.execute(sql, params or None).fetchall())

    def close(self) -> None:
        """Close the connection."""
        for connection in (self._duckdb, self._postgres):
            if connection is not None:
                connection.close()


# --------------------------------------------------------------------------- charts

Label = TypeVar("Label", str, date)
Stacks = list[tuple[Label, dict[str, int]]]
"""Stacked bars: per label (a bar's text, or a column's day), the count of each series."""
Draw = Callable[[Stacks[Label], list[str], dict[str, str], int], tuple[str, int]]
"""Draws stacks (series in stacking order, their colours, a width): the SVG and its segments."""


@dataclass
class Chart:
    """One chart: an element id the page and its test know, a title, and its SVG."""

    chart_id: str
    title: str
    note: str
    svg: str
    bars: int
    legend: list[tuple[str, str]]


def _text(  # noqa: PLR0913 - position, text and three keyword-only styles
    x: float,
    y: float,
    label: object,
    *,
    anchor: str = "start",
    size: int = 12,
    colour: str = "#334155",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{colour}" '
        f'text-anchor="{anchor}">{html.escape(str(label))}</text>'
    )


def _empty(width: int) -> str:
    return (
        f'<svg width="{width}" height="60" viewBox="0 0 {width} 60" role="img">'
        f"{_text(width / 2, 35, 'no events', anchor='middle')}</svg>"
    )


def horizontal_bars(
    rows: Stacks[str],
    series: list[str],
    colours: dict[str, str],
    width: int,
) -> tuple[str, int]:
    """Return an SVG of one stacked horizontal bar per row, and how many bar segments it has."""
    if not rows:
        return _empty(width), 0
    label_width, bar_height, gap = 250, 18, 6
    total_max = max(sum(parts.values()) for _, parts in rows) or 1
    plot = width - label_width - 50
    height = len(rows) * (bar_height + gap) + 10
    parts_svg, bars = [], 0
    for index, (label, parts) in enumerate(rows):
        y = 5 + index * (bar_height + gap)
        short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        parts_svg.append(_text(label_width - 8, y + 13, short, anchor="end", size=11))
        x = float(label_width)
        for name in series:
            value = parts.get(name, 0)
            if not value:
                continue
            length = max(plot * value / total_max, 1.0)
            parts_svg.append(
                f'<rect class="bar" x="{x:.1f}" y="{y}" width="{length:.1f}" height="{bar_height}"'
                f' fill="{colours[name]}"><title>{html.escape(f"{label}: {name} {value}")}'
                "</title></rect>"
            )
            x += length
            bars += 1
        parts_svg.append(_text(x + 6, y + 13, sum(parts.values())))
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        + "".join(parts_svg)
        + "</svg>"
    ), bars


def stacked_columns(
    days: Stacks[date],
    series: list[str],
    colours: dict[str, str],
    width: int,
) -> tuple[str, int]:
    """Return an SVG of one stacked column per day, and how many column segments it has."""
    if not any(counts for _, counts in days):
        return _empty(width), 0
    height, left, bottom, top = 240, 40, 40, 10
    plot_width, plot_height = width - left - 10, height - bottom - top
    peak = max(sum(counts.get(name, 0) for name in series) for _, counts in days) or 1
    step = plot_width / len(days)
    out, bars = [], 0
    for fraction in (0, 0.5, 1):
        y = top + plot_height * (1 - fraction)
        out.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
        )
        out.append(_text(left - 6, y + 4, round(peak * fraction), anchor="end", size=11))
    for index, (day, counts) in enumerate(days):
        x = left + index * step + step * 0.15
        y = float(top + plot_height)
        for name in series:
            value = counts.get(name, 0)
            if not value:
                continue
            bar = plot_height * value / peak
            y -= bar
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
                f'height="{bar:.1f}" fill="{colours[name]}">'
                f"<title>{day.isoformat()}: {name} {value}</title></rect>"
            )
            bars += 1
        if index % 5 == 0 or index == len(days) - 1:
            out.append(
                _text(
                    x + step * 0.35,
                    height - bottom + 16,
                    day.strftime("%d %b"),
                    anchor="middle",
                    size=11,
                )
            )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        + "".join(out)
        + "</svg>"
    ), bars


def colours_for(names: list[str]) -> dict[str, str]:
    """Give each series name a colour, outcomes their usual ones."""
    return {
        name: OUTCOME_COLOURS.get(name, PALETTE[index % len(PALETTE)])
        for index, name in enumerate(names)
    }


def grouped(rows: list[tuple[Any, ...]]) -> tuple[Stacks[str], list[str]]:
    """Turn (label, series, count) rows into bars in first-seen label order, and the series."""
    bars: dict[str, dict[str, int]] = {}
    series: list[str] = []
    for label, name, count in rows:
        bars.setdefault(str(label), {})[str(name)] = int(count)
        if str(name) not in series:
            series.append(str(name))
    return list(bars.items()), sorted(series)


def bar_chart(  # noqa: PLR0913 - what the chart says, its stacks, and how to draw them
    chart_id: str,
    title: str,
    note: str,
    stacks: Stacks[Label],
    series: list[str],
    *,
    draw: Draw[Label],
    width: int = HALF_WIDTH,
) -> Chart:
    """Return one chart of stacked bars, its series coloured and named in the legend."""
    colours = colours_for(series)
    svg, bars = draw(stacks, series, colours, width)
    return Chart(chart_id, title, note, svg, bars, [(name, colours[name]) for name in series])


# --------------------------------------------------------------------------- queries


def outcomes_per_day(db: Warehouse) -> Chart:
    """Sign-in attempts per UTC day over the last DAYS days of data, by outcome."""
    ((latest,),) = db.rows(
        f"SELECT max(event_date_utc) FROM {STAGING}.stg_onepassword__sign_in_attempts"
    )
    latest = latest or datetime.now(timezone.utc).date()
    days = [latest - timedelta(days=offset) for offset in range(DAYS - 1, -1, -1)]
    rows = db.rows(
        f"SELECT event_date_utc, outcome, count(*) FROM {STAGING}.stg_onepassword__sign_in_attempts"
        " WHERE event_date_utc >= %s GROUP BY 1, 2",
        days[0],
    )
    per_day: dict[date, dict[str, int]] = {day: {} for day in days}
    for day, outcome, count in rows:
        per_day[day][str(outcome)] = int(count)
    series = [
        name for name in OUTCOME_COLOURS if any(name in counts for counts in per_day.values())
    ]
    return bar_chart(
        "chart-sign-in-outcomes",
        "Sign-in outcomes per day (UTC)",
        f"Last {DAYS} days of data; a report-only firewall match counts as a success.",
        list(per_day.items()),
        series,
        draw=stacked_columns,
        width=FULL_WIDTH,
    )


def failed_by(db: Warehouse, column: str, chart_id: str, title: str) -> Chart:
    """Failed sign-ins by one column (country code or user email), per account."""
    rows = db.rows(f"""
        WITH failed AS (
            SELECT coalesce({column}, '(none)') AS label, account_name
            FROM {STAGING}.stg_onepassword__sign_in_attempts WHERE NOT is_success
        ), top_labels AS (
            SELECT label, count(*) AS total FROM failed GROUP BY label
            ORDER BY total DESC, label LIMIT {TOP}
        )
        SELECT failed.label, failed.account_name, count(*)
        FROM failed JOIN top_labels ON failed.label = top_labels.label
        GROUP BY failed.label, failed.account_name, top_labels.total
        ORDER BY top_labels.total DESC, failed.label, failed.account_name""")
    stacks, series = grouped(rows)
    return bar_chart(
        chart_id,
        title,
        f"Top {TOP}, all time, coloured by account.",
        stacks,
        series,
        draw=horizontal_bars,
    )


def revealed_items(db: Warehouse) -> Chart:
    """Chart the items revealed or copied most, by action."""
    rows = db.rows(f"""
        WITH uses AS (
            SELECT item_uuid, action FROM {STAGING}.stg_onepassword__item_usages
            WHERE action IN ('reveal', 'secure-copy')
        ), top_items AS (
            SELECT item_uuid, count(*) AS total FROM uses GROUP BY item_uuid
            ORDER BY total DESC, item_uuid LIMIT {TOP}
        )
        SELECT uses.item_uuid, uses.action, count(*)
        FROM uses JOIN top_items ON uses.item_uuid = top_items.item_uuid
        GROUP BY uses.item_uuid, uses.action, top_items.total
        ORDER BY top_items.total DESC, uses.item_uuid, uses.action""")
    stacks, series = grouped(rows)
    return bar_chart(
        "chart-revealed-items",
        "Most revealed or copied items",
        "Item UUIDs (the API returns no item names); reveal and secure-copy.",
        stacks,
        series,
        draw=horizontal_bars,
    )


def audit_by_kind(db: Warehouse) -> Chart:
    """Audit events per kind (the lookup's category), per account."""
    rows = db.rows(f"""
        SELECT action_category, account_name, count(*)
        FROM {STAGING}.stg_onepassword__audit_events
        GROUP BY action_category, account_name
        ORDER BY sum(count(*)) OVER (PARTITION BY action_category) DESC, action_category,
                 account_name""")
    stacks, series = grouped(rows)
    return bar_chart(
        "chart-audit-actions",
        "Audit actions by kind",
        "Kinds from the audit-action lookup, coloured by account.",
        stacks,
        series,
        draw=horizontal_bars,
    )


def events_per_account(db: Warehouse) -> Chart:
    """Events per account, by stream."""
    rows = db.rows(f"""
        SELECT account_name || ' (' || account_uuid || ')', stream, count(*)
        FROM {MARTS}.onepassword__events GROUP BY 1, 2 ORDER BY 1, 2""")
    stacks, series = grouped(rows)
    return bar_chart(
        "chart-per-account",
        "Events per account",
        "Every stream, all time; the account UUID comes from introspection.",
        stacks,
        series,
        draw=horizontal_bars,
        width=FULL_WIDTH,
    )


def headline(db: Warehouse) -> list[tuple[str, str]]:
    """Return the three answers the demo ends with."""
    today = datetime.now(timezone.utc).date()
    ((failed_today,),) = db.rows(
        f"SELECT count(*) FROM {STAGING}.stg_onepassword__sign_in_attempts "
        "WHERE NOT is_success AND event_date_utc = %s",
        today,
    )
    country = db.rows(
        f"SELECT country_code, count(*) FROM {STAGING}.stg_onepassword__sign_in_attempts "
        "WHERE NOT is_success GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    )
    item = db.rows(
        f"SELECT item_uuid, vault_uuid, count(*) FROM {STAGING}.stg_onepassword__item_usages "
        "WHERE action = 'reveal' GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 1"
    )
    return [
        ("Failed sign-ins today (UTC)", f"{failed_today}"),
        (
            "Top country of failed sign-ins",
            f"{country[0][0]} ({country[0][1]} failures)" if country else "none",
        ),
        (
            "Most revealed item",
            f"{item[0][0]} in vault {item[0][1]} ({item[0][2]} reveals)" if item else "none",
        ),
    ]


# --------------------------------------------------------------------------- page

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;
       color: #0f172a; background: #f8fafc; }
h1 { font-size: 22px; margin: 0 0 4px; } .sub { color: #64748b; margin: 0 0 16px; }
.answers { display: flex; gap: 12px; margin-bottom: 16px; flex-wrap: wrap; }
.answer { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 10px 14px; }
.answer b { display: block; font-size: 12px; color: #64748b; font-weight: 600; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; }
figure.chart { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; margin: 0;
               padding: 12px 16px; }
figure.chart h2 { font-size: 15px; margin: 0 0 2px; } figure.chart p { margin: 0 0 8px;
               font-size: 12px; color: #64748b; }
.legend span { display: inline-block; margin-right: 12px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
"""

# Inline and optional: records each chart's rendered size and bar count on the element, so a
# headless browser's DOM dump shows whether every chart really rendered.
MEASURE = """
for (const figure of document.querySelectorAll("figure.chart")) {
  const box = figure.querySelector("svg").getBoundingClientRect();
  const drawn = [...figure.querySelectorAll("rect.bar")]
    .filter((bar) => {
      const b = bar.getBoundingClientRect();
      return b.width > 0 && b.height > 0;
    });
  figure.dataset.renderedWidth = Math.round(box.width);
  figure.dataset.renderedHeight = Math.round(box.height);
  figure.dataset.renderedBars = drawn.length;
}
"""


def render_page(charts: list[Chart], answers: list[tuple[str, str]], source: str) -> str:
    """Return the whole HTML page."""
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    answer_html = "".join(
        f'<div class="answer"><b>{html.escape(label)}</b>{html.escape(value)}</div>'
        for label, value in answers
    )
    figures = []
    for chart in charts:
        legend = "".join(
            f'<span><i style="background:{colour}"></i>{html.escape(name)}</span>'
            for name, colour in chart.legend
        )
        figures.append(
            f'<figure class="chart" id="{chart.chart_id}" data-bars="{chart.bars}">'
            f"<h2>{html.escape(chart.title)}</h2><p>{html.escape(chart.note)}</p>"
            f'<div class="legend">{legend}</div>{chart.svg}</figure>'
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>1Password events report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>1Password events</h1>"
        f'<p class="sub">From the models in {html.escape(source)}, {made}.</p>'
        f'<div class="answers">{answer_html}</div>'
        f'<div class="grid">{"".join(figures)}</div>'
        f"<script>{MEASURE}</script></body></html>\n"
    )


def build_report(db: Warehouse, out: Path) -> list[tuple[str, str]]:
    """Write the page to `out`; return the three headline answers."""
    charts = [
        outcomes_per_day(db),
        failed_by(db, "country_code", "chart-failed-by-country", "Failed sign-ins by country"),
        failed_by(db, "user_email", "chart-failed-by-user", "Failed sign-ins by user"),
        revealed_items(db),
        audit_by_kind(db),
        events_per_account(db),
    ]
    answers = headline(db)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(charts, answers, db.label), encoding="utf-8")
    return answers


def main(argv: list[str] | None = None) -> int:
    """Write the report and print its path and the three answers."""
    parser = argparse.ArgumentParser(prog="report", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--duckdb",
        type=Path,
        default=ROOT / "output" / "warehouse.duckdb",
        help="DuckDB file with the models (default output/warehouse.duckdb)",
    )
    source.add_argument(
        "--postgres",
        metavar="CONNINFO",
        help="libpq connection string of the PostgreSQL database instead",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "output" / "report.html",
        help="the HTML file to write (default output/report.html)",
    )
    args = parser.parse_args(argv)
    db = Warehouse(conninfo=args.postgres) if args.postgres else Warehouse(duckdb_path=args.duckdb)
    try:
        answers = build_report(db, args.out)
    finally:
        db.close()
    print(f"   report:  {args.out}")
    for label, value in answers:
        print(f"   {label}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
