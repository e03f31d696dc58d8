"""`pulse detect`: score any univariate series offline with the detector the stream uses.

Input: CSV with the header `timestamp,value` (cells trimmed, case-insensitive), then one row per
point. What real exported files have is accepted, and decided as follows:

- **Timestamps**: RFC 3339 / ISO 8601 (`2026-01-05T10:00:00Z`, `2026-01-05 11:00:00+01:00`,
  `2026-01-05T10:00:00`) or epoch seconds (`1767607200`, `1767607200.5`). A timestamp without a
  zone is local time in `timezone` (UTC by default). A local time repeated by a daylight-saving
  change (the hour 02:00-03:00 twice in autumn) is read as its second occurrence when it comes
  after the first one in the file, so the repeated hour does not collide with the first.
- **Repeated timestamps** are one point: the detector sees the mean of their values (a row sent
  twice, or a gauge sampled twice, says the level once) and every one of the rows gets that
  point's score.
- **Rows out of order** are put back in time order when they are at most `max_disorder` seconds
  (default one day) behind the newest time read so far, like the stream's allowed lateness.
  A row further behind is *late*: written with an empty score and reported.
- **Gaps and irregular spacing** need nothing: the detector smooths on elapsed time and, unless
  `step` is given, learns the spacing from many gaps (`streams.detection.detectors`).
- A row with an empty value cell is a gap: written with the score 0.0000, not fed to the detector.
- A row that cannot be used (wrong number of cells, unparsable timestamp, non-numeric or non-finite
  value) is written with an empty score and reported with its line number (`DetectSummary.notes`);
  it never stops the run. Only an empty file or a wrong header is refused (`DetectError`).

Output: CSV `timestamp,value,anomaly_score`, one row per input row in the input order, the
timestamp and value cells repeated exactly as given (the first two cells of a malformed row), the
score in [0, 1] with 4 decimals (empty for an unusable or late row). Scores are causal in event
time: a point's score depends only on the points at or before its time (for a file in time order:
only on the rows above it). Warm-up rows (`Score.ready` False) are scored too, and counted apart.
Seasonality is learned on UTC days (a local-time series shifts by an hour at a DST change).
The whole file is read before scoring (the reordering needs it); memory grows with the rows.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TextIO

from streams.core.instants import UTC_ZONE, parse_instant
from streams.detection.baseline import Period
from streams.detection.detectors import SeriesDetector

HEADER = ("timestamp", "value")
OUTPUT_HEADER = ("timestamp", "value", "anomaly_score")
MAX_DISORDER = 86_400.0
"""Seconds a row may be behind the newest time read so far and still be put in its place."""


class DetectError(ValueError):
    """The input cannot be scored at all; the message names the line (1 = the header)."""


@dataclass(frozen=True, slots=True)
class DetectSummary:
    """What a run saw. `step` is None when too few values came to learn it."""

    rows: int
    gaps: int
    """Rows with an empty value: written with score 0, not fed to the detector."""
    warmup: int
    """Scored rows whose score came before the detector was ready (`Score.ready` False)."""
    step: float | None
    period: Period
    """The seasonality the detector had chosen at the end of the input."""
    threshold: float
    flagged: int
    """Rows scored >= `threshold` after warm-up (as written, with 4 decimals)."""
    first_flagged: str | None
    """The timestamp cell of the first such row (in time order), as given."""
    flagged_warmup: int
    """Rows scored >= `threshold` during warm-up: the detector is still learning the series, so
    these are reported apart rather than mixed with the findings."""
    unusable: int = 0
    """Rows written with an empty score: malformed, or later than `max_disorder`."""
    repeated: int = 0
    """Rows whose timestamp an earlier row already had (merged into one point)."""
    reordered: int = 0
    """Rows before the newest time read so far, put back in their place."""
    notes: tuple[str, ...] = field(default=())
    """One message per unusable row: `line N: why`."""

    def line(self) -> str:
        """The one-line summary `pulse detect` prints on stderr."""
        step = f"step {self.step:g} s" if self.step is not None else "step not learned"
        first = f" (first at {self.first_flagged})" if self.first_flagged is not None else ""
        return (
            f"detect: {self.rows} rows ({self.warmup} warm-up, {self.gaps} empty, "
            f"{self.unusable} unusable, {self.repeated} repeated, {self.reordered} reordered), "
            f"{step}, period {self.period}, {self.flagged} rows scored >= {self.threshold:g} "
            f"after warm-up{first}, {self.flagged_warmup} during warm-up"
        )


def _parse_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"value {text!r} is not a finite number")
    return value


def _check_header(record: tuple[int, list[str]] | None) -> None:
    if record is None:
        raise DetectError("line 1: empty input, expected the header 'timestamp,value'")
    line, row = record
    found = tuple(cell.strip().lstrip("\ufeff").strip().lower() for cell in row)
    if found != HEADER:
        raise DetectError(f"line {line}: header must be 'timestamp,value', found {','.join(row)!r}")


def _records(inp: TextIO, notes: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank record; a record that is not valid CSV is noted
    and comes back as one cell, so it is reported as unusable with its line."""
    reader = csv.reader(inp)
    line = 0
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            line = reader.line_num
            notes.append(f"line {line}: not valid CSV: {exc}")
            yield line, []
            continue
        if row is None:
            return
        line = reader.line_num
        if row:  # a blank line is no record
            yield line, row


@dataclass(slots=True)
class _Row:
    line: int
    cells: tuple[str, str]
    t: float = math.nan
    value: float | None = None
    usable: bool = False


def _read(
    inp: TextIO, zone: tzinfo, max_disorder: float, notes: list[str]
) -> tuple[list[_Row], int]:
    """Every record after the header, parsed; unusable ones noted. Returns (rows, reordered)."""
    records = _records(inp, notes)
    _check_header(next(records, None))
    rows: list[_Row] = []
    newest = -math.inf
    reordered = 0
    for line, cells in records:
        row = _Row(line, (cells[0] if cells else "", cells[1] if len(cells) > 1 else ""))
        rows.append(row)
        if not cells:
            continue  # noted by _records
        if len(cells) != len(HEADER):
            notes.append(f"line {line}: expected 2 cells (timestamp,value), found {len(cells)}")
            continue
        stamp, cell = cells
        try:
            row.t = parse_instant(stamp, zone, after=newest)
            row.value = None if not cell.strip() else _parse_value(cell.strip())
        except ValueError as exc:
            notes.append(f"line {line}: {exc}")
            continue
        if row.t < newest - max_disorder:
            notes.append(
                f"line {line}: timestamp {stamp.strip()!r} is more than {max_disorder:g} s "
                "before a row above it: too late to put in its place"
            )
            continue
        reordered += row.t < newest
        newest = max(newest, row.t)
        row.usable = True
    return rows, reordered


def read_points(
    inp: TextIO, *, timezone: tzinfo = UTC_ZONE, max_disorder: float = MAX_DISORDER
) -> tuple[list[tuple[float, float]], list[str]]:
    """The points of a `timestamp,value` CSV as `pulse detect` sees them: in time order, one per
    distinct time (the mean of its rows), gaps and unusable rows left out. Returns (points,
    notes on unusable rows). Raises DetectError for an empty input or a wrong header."""
    notes: list[str] = []
    rows, _ = _read(inp, timezone, max_disorder, notes)
    points: dict[float, list[float]] = {}
    for row in rows:
        if row.usable and row.value is not None:
            points.setdefault(row.t, []).append(row.value)
    return [(t, math.fsum(v) / len(v)) for t, v in sorted(points.items())], notes


def run_detect(
    inp: TextIO,
    out: TextIO,
    *,
    step: float | None = None,
    threshold: float = 0.5,
    timezone: tzinfo = UTC_ZONE,
    max_disorder: float = MAX_DISORDER,
) -> DetectSummary:
    """Score every row of `inp` and write the scored CSV to `out`.

    `step`: the series' spacing in seconds (None: learned from the data). `threshold` only
    feeds the summary's count of high scores. `timezone`: the zone of timestamps without one.
    `max_disorder`: seconds a row may be behind the newest one above it and still be scored.
    Raises DetectError only for an empty input or a wrong header (nothing is written then).
    """
    if step is not None and not (math.isfinite(step) and step > 0):
        raise DetectError(f"step must be a positive number of seconds, got {step}")
    if not max_disorder >= 0:
        raise DetectError(f"max_disorder must be >= 0 seconds, got {max_disorder}")
    notes: list[str] = []
    rows, reordered = _read(inp, timezone, max_disorder, notes)
    points: dict[float, list[float]] = {}
    for row in rows:
        if row.usable and row.value is not None:
            points.setdefault(row.t, []).append(row.value)
    repeated = sum(len(values) - 1 for values in points.values())
    detector = SeriesDetector(step=step)
    scored: dict[float, tuple[str, bool]] = {}
    for t in sorted(points):
        values = points[t]
        score = detector.update(t, math.fsum(values) / len(values))
        scored[t] = (f"{score.score:.4f}", score.ready)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OUTPUT_HEADER)
    gaps = warmup = flagged = flagged_warmup = 0
    first: tuple[float, str] | None = None
    for row in rows:
        if not row.usable:
            writer.writerow((*row.cells, ""))
            continue
        if row.value is None:
            gaps += 1
            writer.writerow((*row.cells, f"{0.0:.4f}"))
            continue
        text, ready = scored[row.t]
        high = float(text) >= threshold  # as written, so the count matches a filter on the file
        if not ready:
            warmup += 1
            flagged_warmup += high
        elif high:
            flagged += 1
            if first is None or row.t < first[0]:
                first = (row.t, row.cells[0].strip())
        writer.writerow((*row.cells, text))
    return DetectSummary(
        rows=len(rows),
        gaps=gaps,
        warmup=warmup,
        step=detector.step,
        period=detector.period,
        threshold=threshold,
        flagged=flagged,
        first_flagged=first[1] if first is not None else None,
        flagged_warmup=flagged_warmup,
        unusable=sum(not row.usable for row in rows),
        repeated=repeated,
        reordered=reordered,
        notes=tuple(notes),
    )
