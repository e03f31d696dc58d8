"""`pulse report`: one series with its expected band and the alerts the stream would raise,
read from what `pulse detect` or `pulse backtest` read or wrote. Drawn by `report_chart`.

Input (CSV, the header decides):
- `timestamp,value[,anomaly_score]`: the input or output of `pulse detect`. Timestamps as
  `pulse detect` takes them (RFC 3339 with a zone, or epoch seconds), drawn in time order; rows
  with the same timestamp are one point (their mean); an empty value is a gap (not drawn, not
  scored).
- `kpi,window,window_start,window_end,dimensions,value`: the output of `pulse backtest`. One
  series is chosen with `kpi` (needed when the file holds several), `window` (default: the KPI's
  shortest) and `dimensions` (`region=emea;business_unit=retail`, default none): rows whose
  dimensions contain those pairs are added up per window instance (a flow or a balance), or,
  for a KPI that does not add up (a ratio), must be exactly one series.

The series is scored again with the stream's detector (`SeriesDetector`, the scores `pulse
detect` writes) and its alert lifecycle (`Lifecycle` with the default `AlertPolicy`): each point
gets its expected value and band, and alerts open and resolve as the worker would decide them.
Pure: no plotting here. Bad input raises `ReportError` naming the line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from streams.core.compiler import CompiledCatalog
from streams.core.instants import parse_instant
from streams.detection.alerts import AlertPolicy, Lifecycle, Severity
from streams.detection.detectors import SeriesDetector
from streams.errors import PulseError

DETECT_HEADERS = (("timestamp", "value"), ("timestamp", "value", "anomaly_score"))
BACKTEST_HEADER = ("kpi", "window", "window_start", "window_end", "dimensions", "value")
WINDOW_ORDER = ("1m", "5m", "1h", "1d", "30d", "1mo", "fp", "fq", "fytd", "balance", "cumulative")
ADDITIVE = frozenset({"flow", "balance"})
DEFAULT_POLICY = AlertPolicy()


class ReportError(PulseError):
    """The input cannot be drawn; the message names the line (1 = the header)."""


@dataclass(frozen=True, slots=True)
class ScoredPoint:
    t: float
    """Epoch seconds (the window start for a backtest series)."""
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    ready: bool


@dataclass(frozen=True, slots=True)
class Alert:
    started_at: float
    severity: Severity
    ended_at: float | None
    """When the lifecycle resolved it (None: still open at the end of the series)."""


@dataclass
class Report:
    title: str
    points: list[ScoredPoint] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    gaps: int = 0

    @property
    def outside(self) -> list[ScoredPoint]:
        """Points outside their band once the detector is ready."""
        return [p for p in self.points if p.ready and not p.lower <= p.value <= p.upper]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which series of a backtest file to draw."""

    kpi: str | None = None
    window: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()


def parse_dimensions(text: str) -> tuple[tuple[str, str], ...]:
    """`region=emea;business_unit=retail` (`,` works too) -> sorted pairs; ValueError if bad."""
    pairs = []
    for part in (p.strip() for p in text.replace(",", ";").split(";")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"dimension {part!r} is not name=value")
        pairs.append((key.strip(), value.strip()))
    return tuple(sorted(pairs))


def _rows(inp: TextIO) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(inp)
    try:
        for row in reader:
            if row:
                yield reader.line_num, [cell.strip() for cell in row]
    except csv.Error as exc:
        raise ReportError(f"line {reader.line_num + 1}: not valid CSV: {exc}") from None


def read_series(
    inp: TextIO, catalog: CompiledCatalog, selection: Selection = Selection()
) -> tuple[str, list[tuple[float, float | None]]]:
    """(title, [(time, value or None for a gap)]) in time order."""
    rows = _rows(inp)
    first = next(rows, None)
    if first is None:
        raise ReportError("line 1: empty input")
    line, header = first
    names = tuple(h.lstrip("\ufeff").lower() for h in header)
    if names in DETECT_HEADERS:
        return "series", _detect_rows(rows, len(names))
    if names == BACKTEST_HEADER:
        return _backtest_rows(rows, catalog, selection)
    raise ReportError(
        f"line {line}: header must be 'timestamp,value[,anomaly_score]' (pulse detect) or "
        f"'{','.join(BACKTEST_HEADER)}' (pulse backtest), found {','.join(header)!r}"
    )


def _number(text: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ReportError(f"line {line}: value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ReportError(f"line {line}: value {text!r} is not a finite number")
    return value


def _detect_rows(
    rows: Iterator[tuple[int, list[str]]], cells: int
) -> list[tuple[float, float | None]]:
    """Rows in time order (a file `pulse detect` reordered keeps its input order); a repeated
    timestamp is one point, the mean of its values, as `pulse detect` scores it."""
    values: dict[float, list[float]] = {}
    for line, row in rows:
        if len(row) != cells:
            raise ReportError(f"line {line}: expected {cells} cells, found {len(row)}")
        try:
            t = parse_instant(row[0])
        except ValueError as exc:
            raise ReportError(f"line {line}: {exc}") from None
        found = values.setdefault(t, [])
        if row[1]:
            found.append(_number(row[1], line))
    return [(t, sum(v) / len(v) if v else None) for t, v in sorted(values.items())]


def _backtest_rows(
    rows: Iterator[tuple[int, list[str]]], catalog: CompiledCatalog, selection: Selection
) -> tuple[str, list[tuple[float, float | None]]]:
    table: list[tuple[int, str, str, float, tuple[tuple[str, str], ...], float]] = []
    for line, row in rows:
        if len(row) != len(BACKTEST_HEADER):
            raise ReportError(f"line {line}: expected 6 cells, found {len(row)}")
        try:
            t = parse_instant(row[2])
            labels = parse_dimensions(row[4])
        except ValueError as exc:
            raise ReportError(f"line {line}: {exc}") from None
        table.append((line, row[0], row[1], t, labels, _number(row[5], line)))
    kpis = sorted({r[1] for r in table})
    if selection.kpi is None and len(kpis) != 1:
        raise ReportError(f"the file holds several KPIs; choose one with --kpi: {kpis}")
    kpi = selection.kpi or kpis[0]
    if kpi not in kpis:
        raise ReportError(f"no rows of KPI {kpi!r} (the file has {', '.join(kpis) or 'none'})")
    windows = sorted({r[2] for r in table if r[1] == kpi}, key=_rank)
    window = selection.window or windows[0]
    if window not in windows:
        raise ReportError(f"no rows of {kpi} in window {window!r} (it has {', '.join(windows)})")
    wanted = set(selection.dimensions)
    picked = [r for r in table if r[1] == kpi and r[2] == window and wanted <= set(r[4])]
    series = {r[4] for r in picked}
    kind = catalog.kpis[kpi].kind if kpi in catalog.kpis else "ratio"
    if kind not in ADDITIVE and len(series) > 1:
        raise ReportError(
            f"{kpi} does not add up across series; choose one with --dimensions "
            f"(e.g. {';'.join(f'{k}={v}' for k, v in sorted(series)[0])})"
        )
    sums: dict[float, float] = {}
    for _, _, _, start, _, amount in picked:
        sums[start] = sums.get(start, 0.0) + amount
    scope = ";".join(f"{k}={v}" for k, v in selection.dimensions) or "all series"
    return f"{kpi} {window} ({scope})", sorted(sums.items())


def _rank(window: str) -> int:
    return WINDOW_ORDER.index(window) if window in WINDOW_ORDER else len(WINDOW_ORDER)


def score_series(
    title: str,
    series: list[tuple[float, float | None]],
    *,
    step: float | None = None,
    policy: AlertPolicy = DEFAULT_POLICY,
) -> Report:
    """Score each point as the stream would and replay its alert lifecycle."""
    detector = SeriesDetector(step=step)
    lifecycle = Lifecycle(policy)
    report = Report(title)
    open_alert: tuple[float, Severity] | None = None
    for t, value in series:
        if value is None:
            report.gaps += 1
            continue
        s = detector.update(t, value)
        report.points.append(ScoredPoint(t, value, s.expected, s.lower, s.upper, s.score, s.ready))
        change = lifecycle.step(t, s.alerting, ready=s.ready, accepted=s.accepted)
        if change is None:
            if open_alert is not None and lifecycle.active:
                open_alert = (open_alert[0], lifecycle.severity)
            continue
        if change.state == "opened":
            open_alert = (change.started_at, change.severity)
        else:
            report.alerts.append(Alert(change.started_at, change.severity, t))
            open_alert = None
    if open_alert is not None:
        report.alerts.append(Alert(open_alert[0], open_alert[1], None))
    return report
