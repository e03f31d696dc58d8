"""Draw a `Report`: a PNG, and a self-contained HTML page (the same chart as inline SVG, the
alerts as a table; no script, nothing fetched).

Drawn with matplotlib's Agg backend: it renders PNG and SVG in-process, with no display and no
browser, from one figure (plotly or bokeh need a browser or a downloaded renderer for a PNG).
It is imported only here, so the rest of kpi-pulse runs without it (the `report` extra).
"""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.errors import ConfigError
from streams.offline.report import Report

WIDTH_IN, HEIGHT_IN, DPI = 11.0, 4.2, 110
COLORS = {"band": "#cfe0f7", "expected": "#2f7de1", "value": "#1d2330", "warning": "#d98a00"}
COLORS["critical"] = "#d0342c"


def _when(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _figure(report: Report) -> Any:
    """The chart as a matplotlib Figure (typed loosely: its date axes take datetimes, which
    matplotlib's annotations do not all say)."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - an optional extra, loaded on use

        mpl.use("Agg")
        from matplotlib import dates  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError(
            "pulse report needs matplotlib: pip install 'kpi-pulse[report]' (make setup does)"
        ) from exc
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    ax: Any = fig.add_subplot()
    mdates: Any = dates
    points = report.points
    times = [_when(p.t) for p in points]
    ready = [p.ready for p in points]
    ax.fill_between(
        times,
        [p.lower for p in points],
        [p.upper for p in points],
        where=ready,
        color=COLORS["band"],
        label="expected band",
        linewidth=0,
    )
    ax.plot(
        times,
        [p.expected if p.ready else float("nan") for p in points],
        color=COLORS["expected"],
        linestyle="--",
        linewidth=1,
        label="expected",
    )
    ax.plot(times, [p.value for p in points], color=COLORS["value"], linewidth=1.2, label="value")
    outside = report.outside
    if outside:
        ax.scatter(
            [_when(p.t) for p in outside],
            [p.value for p in outside],
            s=14,
            color=COLORS["critical"],
            zorder=3,
            label="outside the band",
        )
    end = points[-1].t if points else 0.0
    for number, alert in enumerate(report.alerts):
        color = COLORS[alert.severity]
        ax.axvspan(
            _when(alert.started_at),
            _when(alert.ended_at if alert.ended_at is not None else end),
            color=color,
            alpha=0.15,
            label="alert open" if number == 0 else None,
        )
        ax.axvline(_when(alert.started_at), color=color, linewidth=1.2)
    warmup = [p for p in points if not p.ready]
    if warmup and len(warmup) < len(points):
        ax.axvline(_when(warmup[-1].t), color="#6b7385", linewidth=0.8, linestyle=":")
        ax.annotate(
            "warm-up ends",
            (_when(warmup[-1].t), 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            color="#6b7385",
            va="top",
            ha="left",
        )
    ax.set_title(report.title, loc="left", fontsize=12)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax.set_xlabel("UTC")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, ncols=3)
    return fig


def render_png(report: Report, path: Path) -> None:
    fig = _figure(report)
    fig.savefig(path, format="png")


def _fmt(t: float | None) -> str:
    return "still open" if t is None else _when(t).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_html(report: Report, path: Path) -> None:
    """One file: the chart as inline SVG, a summary and the alerts table."""
    svg = io.StringIO()
    _figure(report).savefig(svg, format="svg")
    chart = svg.getvalue()
    chart = chart[chart.index("<svg") :]  # drop the XML prolog and doctype: inline in HTML
    rows = "\n".join(
        f"<tr class='{a.severity}'><td>{a.severity}</td><td>{_fmt(a.started_at)}</td>"
        f"<td>{_fmt(a.ended_at)}</td></tr>"
        for a in report.alerts
    )
    ready = sum(p.ready for p in report.points)
    title = html.escape(report.title)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kpi-pulse report: {title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; color: #1d2330; margin: 24px; }}
svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: 4px 10px; border-bottom: 1px solid #dde1e8; }}
tr.critical td:first-child {{ color: #d0342c; font-weight: 600; }}
tr.warning td:first-child {{ color: #d98a00; font-weight: 600; }}
.muted {{ color: #6b7385; }}
</style></head><body>
<h1>{title}</h1>
<p class="muted">{len(report.points)} points ({len(report.points) - ready} warm-up,
{report.gaps} gaps), {len(report.outside)} outside the band after warm-up,
{len(report.alerts)} alerts. Scored with the stream's detector and alert lifecycle
(kpi-pulse <code>pulse report</code>).</p>
{chart}
<h2>Alerts</h2>
<table><thead>
<tr><th>severity</th><th>opened (first anomalous point)</th><th>resolved</th></tr>
</thead>
<tbody>
{rows or "<tr><td colspan='3' class='muted'>none</td></tr>"}
</tbody></table>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
