"""`pulse detect`: score any univariate series offline with the detector the stream uses.

Input: CSV with the header `timestamp,value` (cells trimmed, case-insensitive), then one row per
point, times strictly increasing. A timestamp is either RFC 3339 / ISO 8601 with a time zone
(`2026-01-05T10:00:00Z`, `2026-01-05T11:00:00+01:00`) or epoch seconds (`1767607200`,
`1767607200.5`); a timestamp without a time zone is refused, since guessing one would shift the
daily seasonality. Any spacing is fine and gaps are allowed (`SeriesDetector` smooths on elapsed
time and learns the step from the median of its first gaps unless `step` is given). Seasonality
is learned on UTC days and weeks.

Output: CSV `timestamp,value,anomaly_score`, one row per input row in the same order, the
timestamp and value cells repeated exactly as given, the score in [0, 1] with 4 decimals. Each
score is what the detector said when the row arrived, so it depends only on the rows at or before
it (causal). Warm-up rows (`Score.ready` False: the detector is still learning the level, step and
seasonality) get the detector's score too, which can be high; the summary counts them and their
high scores apart. 0.5 means "at the edge of the expected band" (see `streams.detection.detectors`).

Rows with an empty value cell are gaps: they are written with the score 0.0000 and not fed to the
detector (their timestamp must still be valid and increasing). Anything else that cannot be
scored (a bad header, a wrong number of cells, an unparsable or naive timestamp, a time not after
the previous row's, a non-numeric or non-finite value) is an input error: `DetectError`, naming
the line, and the run stops.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from streams.detection.detectors import Period, SeriesDetector

HEADER = ("timestamp", "value")
OUTPUT_HEADER = ("timestamp", "value", "anomaly_score")
_EPOCH = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class DetectError(ValueError):
    """The input cannot be scored; the message names the line (1 = the header)."""


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
    """The timestamp cell of the first such row, as given."""
    flagged_warmup: int
    """Rows scored >= `threshold` during warm-up: the detector is still learning the series, so
    these are reported apart rather than mixed with the findings."""

    def line(self) -> str:
        """The one-line summary `pulse detect` prints on stderr."""
        step = f"step {self.step:g} s" if self.step is not None else "step not learned"
        first = f" (first at {self.first_flagged})" if self.first_flagged is not None else ""
        return (
            f"detect: {self.rows} rows ({self.warmup} warm-up, {self.gaps} empty), {step}, "
            f"period {self.period}, {self.flagged} rows scored >= {self.threshold:g} after "
            f"warm-up{first}, {self.flagged_warmup} during warm-up"
        )


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an RFC 3339 / ISO 8601 time with a zone, or of epoch seconds as given.

    Raises ValueError (with a message meant for a person) when it is neither, or has no zone.
    """
    text = text.strip()
    if _EPOCH.fullmatch(text):
        seconds = float(text)
        if not math.isfinite(seconds):
            raise ValueError(f"timestamp {text!r} is out of range")
        return seconds
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"timestamp {text!r} is neither RFC 3339 (e.g. 2026-01-05T10:00:00Z) nor epoch seconds"
        ) from None
    if when.tzinfo is None:
        raise ValueError(
            f"timestamp {text!r} has no time zone: add Z or an offset such as +01:00, "
            "or give epoch seconds"
        )
    return when.timestamp()


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


def _records(inp: TextIO) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank record; malformed CSV is a DetectError."""
    reader = csv.reader(inp)
    line = 0
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise DetectError(f"line {line + 1}: not valid CSV: {exc}") from None
        if row is None:
            return
        line = reader.line_num
        if row:  # a blank line is no record
            yield line, row


def run_detect(
    inp: TextIO, out: TextIO, *, step: float | None = None, threshold: float = 0.5
) -> DetectSummary:
    """Score every row of `inp` and write the scored CSV to `out` as it goes.

    `step`: the series' spacing in seconds (None: learned from the data). `threshold` only
    feeds the summary's count of high scores. Raises DetectError on input that cannot be scored;
    the rows before it have been written by then.
    """
    if step is not None and not (math.isfinite(step) and step > 0):
        raise DetectError(f"step must be a positive number of seconds, got {step}")
    records = _records(inp)
    _check_header(next(records, None))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OUTPUT_HEADER)
    detector = SeriesDetector(step=step)
    rows = gaps = warmup = flagged = flagged_warmup = 0
    first_flagged: str | None = None
    last = -math.inf
    for line, row in records:
        if len(row) != len(HEADER):
            raise DetectError(f"line {line}: expected 2 cells (timestamp,value), found {len(row)}")
        stamp, cell = row
        try:
            t = parse_timestamp(stamp)
            if t <= last:
                raise ValueError(f"timestamp {stamp.strip()!r} is not after the previous row's")
            value = None if not cell.strip() else _parse_value(cell.strip())
        except ValueError as exc:
            raise DetectError(f"line {line}: {exc}") from None
        last = t
        rows += 1
        if value is None:
            gaps += 1
            writer.writerow((stamp, cell, f"{0.0:.4f}"))
            continue
        score = detector.update(t, value)
        text = f"{score.score:.4f}"
        high = float(text) >= threshold  # as written, so the count matches a filter on the file
        if not score.ready:
            warmup += 1
            flagged_warmup += high
        elif high:
            flagged += 1
            if first_flagged is None:
                first_flagged = stamp.strip()
        writer.writerow((stamp, cell, text))
    return DetectSummary(
        rows=rows,
        gaps=gaps,
        warmup=warmup,
        step=detector.step,
        period=detector.period,
        threshold=threshold,
        flagged=flagged,
        first_flagged=first_flagged,
        flagged_warmup=flagged_warmup,
    )
