"""`pulse evaluate --series DIR --labels FILE`: judge the detectors on a team's own history.

DIR holds one CSV per series, `timestamp,value`, read as `pulse detect` reads them (zone-less
times in UTC, repeated times merged, bounded reordering, unusable rows reported and skipped); the
series is named after its file (`revenue_emea.csv` is `revenue_emea`). FILE lists the labelled
windows, CSV `series,start,end` (times ISO 8601 or epoch seconds): when each series had an
incident a person would want to be paged for.

Each series runs through our detector (`SeriesDetector`) and the EWMA z-score baseline, each with
the alert lifecycle the stream uses (`AlertPolicy()`), and the alerts are scored as `pulse
evaluate` scores simulated runs (`streams.tools.evaluate`): an alert matches a window of its series
when it started between one step before the window and `GRACE_STEPS` steps after its end;
precision, recall, time to detect, and the on-call score. A series' step is the one its detector
learned. Series without labels count too: every alert on them is false.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TextIO

from streams.core.instants import parse_instant
from streams.detection.alerts import AlertPolicy, Lifecycle
from streams.detection.detectors import Detector, EwmaDetector, SeriesDetector, learn_step
from streams.detection.watch import AnomalyEvent
from streams.offline.detect import read_points
from streams.tools.evaluate import (
    GRACE_STEPS,
    DetectorReport,
    KindScore,
    alerting_points,
    onset_credit,
)
from streams.tools.row_score import Judged, RowScore, judge, normalized, row_score

LABEL_HEADER = ("series", "start", "end")
KIND = "labelled"


@dataclass(frozen=True, slots=True)
class Label:
    """One labelled incident window of a series, [start, end] in epoch seconds."""

    series: str
    start: float
    end: float


def read_labels(inp: TextIO) -> list[Label]:
    """The windows of a `series,start,end` CSV. Raises ValueError naming the line."""
    reader = csv.reader(inp)
    header = next(reader, None)
    if header is None or tuple(c.strip().lower() for c in header) != LABEL_HEADER:
        raise ValueError(f"line 1: header must be 'series,start,end', found {header!r}")
    labels = []
    for row in reader:
        if not row:
            continue
        line = reader.line_num
        if len(row) != len(LABEL_HEADER):
            raise ValueError(f"line {line}: expected 3 cells (series,start,end), found {len(row)}")
        try:
            start, end = parse_instant(row[1]), parse_instant(row[2])
        except ValueError as exc:
            raise ValueError(f"line {line}: {exc}") from None
        if end < start:
            raise ValueError(f"line {line}: end is before start")
        labels.append(Label(row[0].strip(), start, end))
    return labels


def alerts_of(
    name: str,
    points: list[tuple[float, float]],
    detector: Detector,
    step: float,
    scores: list[tuple[float, float]] | None = None,
) -> list[AnomalyEvent]:
    """The alert transitions of one series under the stream's lifecycle; each point's
    (time, score) appended to `scores` if given."""
    life = Lifecycle(AlertPolicy())
    events = []
    for t, value in points:
        s = detector.update(t, value)
        if scores is not None:
            scores.append((t, s.score))
        change = life.step(t, s.alerting, ready=s.ready, accepted=s.accepted)
        if change is not None:
            events.append(
                AnomalyEvent(
                    "kpi_anomaly",
                    change.state,
                    change.severity,
                    started_at=change.started_at,
                    at=t + step,
                    kpi=name,
                    observed=value,
                    score=s.alerting,
                )
            )
    return events


def score_series(
    name: str,
    alerts: dict[str, list[AnomalyEvent]],
    labels: list[Label],
    steps: dict[str, float],
    ends: dict[str, float],
) -> DetectorReport:
    """Precision, recall, time to detect and the on-call score over every series."""
    report = DetectorReport(name)
    kind = report.kinds[KIND] = KindScore(incidents=len(labels))
    first: dict[int, float] = {}
    for series, events in alerts.items():
        step = steps[series]
        for alert in events:
            if alert.state != "opened":
                continue
            report.alerts += 1
            hits = [
                i
                for i, w in enumerate(labels)
                if w.series == series
                and w.start - step <= alert.started_at <= w.end + GRACE_STEPS * step
            ]
            if not hits:
                report.false_alarms.append(alert)
                report.false_points += alerting_points(alert, events, step, ends[series])
                continue
            report.matched += 1
            kind.alerts += 1
            for i in hits:
                first[i] = min(first.get(i, math.inf), alert.at)
    for i, at in first.items():
        w, step = labels[i], steps.get(labels[i].series, 1.0)
        kind.detected += 1
        kind.delays.append(max(0.0, at - w.start))
        window_end = w.end + GRACE_STEPS * step
        report.credit += onset_credit(min(at, window_end), w.start - step, window_end)
    return report


@dataclass(frozen=True, slots=True)
class SeriesRun:
    """What `run_series` found: each detector's report and row score, its row score per series
    at the threshold best over all of them, and notes on the input."""

    reports: list[DetectorReport]
    row_scores: dict[str, RowScore]
    by_series: dict[str, dict[str, float]]
    notes: list[str]


def run_series(directory: Path, labels_file: Path) -> SeriesRun:
    """Score both detectors on every `*.csv` of `directory`."""
    with labels_file.open(newline="", encoding="utf-8-sig") as inp:
        labels = read_labels(inp)
    labels_path = labels_file.resolve()  # may sit among the series
    files = sorted(f for f in directory.glob("*.csv") if f.resolve() != labels_path)
    if not files:
        raise ValueError(f"{directory}: no *.csv series")
    names = {f.stem for f in files}
    notes = [
        f"{labels_file}: no series named {w.series!r}" for w in labels if w.series not in names
    ]
    labels = [w for w in labels if w.series in names]
    factories: list[tuple[str, Callable[[float], Detector]]] = [
        ("kpi-pulse", SeriesDetector),
        ("ewma z-score", lambda step: EwmaDetector()),
    ]
    alerts: dict[str, dict[str, list[AnomalyEvent]]] = {n: {} for n, _ in factories}
    judged: dict[str, dict[str, Judged]] = {n: {} for n, _ in factories}
    windows = [(w.series, (w.start, w.end)) for w in labels]
    steps: dict[str, float] = {}
    ends: dict[str, float] = {}
    for path in files:
        with path.open(newline="", encoding="utf-8-sig") as inp:
            points, file_notes = read_points(inp)
        notes += [f"{path}, {note}" for note in file_notes]
        if len(points) < 2:
            notes.append(f"{path}: fewer than 2 points, not scored")
            continue
        gaps = [b[0] - a[0] for a, b in pairwise(points)]
        step = learn_step(gaps)
        steps[path.stem], ends[path.stem] = step, points[-1][0] + step
        own = [w for series, w in windows if series == path.stem]
        for name, factory in factories:
            scores: list[tuple[float, float]] = []
            alerts[name][path.stem] = alerts_of(path.stem, points, factory(step), step, scores)
            judged[name][path.stem] = judge(scores, own)
    labels = [w for w in labels if w.series in steps]
    reports = [score_series(n, alerts[n], labels, steps, ends) for n, _ in factories]
    rows = {n: row_score(list(judged[n].values())) for n, _ in factories}
    by_series = {
        n: {s: normalized([j], rows[n].threshold) for s, j in judged[n].items()}
        for n, _ in factories
    }
    return SeriesRun(reports, rows, by_series, notes)


def series_report(run: SeriesRun, out: TextIO, *, verbose: bool = False) -> None:
    for r in run.reports:
        rows = run.row_scores[r.name]
        delay = r.median_delay()
        out.write(
            f"{r.name:<14} precision {r.precision:.2f}  recall {r.recall:.2f}  F1 {r.f1:.2f}  "
            f"alerts {r.alerts} (false {len(r.false_alarms)})  median time to detect "
            f"{'-' if delay is None else f'{delay / 60:.2f} min'}\n"
            f"{r.name:<14} on-call score {r.oncall:.1f} (onset credit {r.credit:.2f}, false "
            f"alerting points {r.false_points})\n"
            f"{r.name:<14} row score {rows.best:.1f} at its best threshold {rows.threshold:.2f} "
            f"({rows.at_half:.1f} at 0.50)\n"
        )
        if verbose:
            for series, value in sorted(run.by_series[r.name].items()):
                out.write(
                    f"row score ({r.name}, threshold {rows.threshold:.2f}): {series} {value:.1f}\n"
                )
        for alert in r.false_alarms if verbose else ():
            when = datetime.fromtimestamp(alert.started_at, UTC).strftime("%Y-%m-%d %H:%M")
            out.write(f"false alarm ({r.name}): {alert.kpi} {when}\n")
