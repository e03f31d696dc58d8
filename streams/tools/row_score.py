"""The row score: a detector's per-row scores judged as streaming anomaly benchmarks judge them.

`pulse detect` writes a score per row; a benchmark of labelled real-world files (the Numenta
Anomaly Benchmark's standard profile, after its published scoring; none of its data is used
here) flags every row whose score reaches one threshold, the same for every file, and charges:

- rows in a file's first `PROBATION` share (at most `PROBATION_ROWS`) are not judged: warm-up;
- in a labelled window, the first flagged row earns `sigma(y) = 2 / (1 + exp(5 y)) - 1`, with
  `y = (t - end) / (end - start)` in [-1, 0]: 0.987 at the window's start, 0 at its end; later
  flagged rows in the same window count nothing; a window without a flagged row costs 1;
- a flagged row outside every window costs `A_FP` times `-sigma(y)`, with `y` its distance after
  the end of the window before it in window lengths (just after an incident, a late detection
  costs little; far from any, 0.11), or the whole `A_FP` when no window comes before it;
- with S the sum over every file, S_null that of never flagging (minus the number of windows)
  and S_perfect that of flagging each window's first row and nothing else, the score is
  `100 (S - S_null) / (S_perfect - S_null)`: 0 = never flagging, 100 = perfect.

Unlike the on-call score of `pulse evaluate` (pages, under the alert lifecycle), every row
counts: a score that stays high while a new level holds is charged for every row of it. The
threshold is searched over the whole corpus per detector (`best`), as such benchmarks do; the
score at our documented threshold 0.5 is reported beside it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

A_FP = 0.11
PROBATION = 0.15
PROBATION_ROWS = 750
THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(5, 101))


def sigma(y: float) -> float:
    """The scaled sigmoid: 0.987 at y = -1, 0 at y = 0, towards -1 as y grows."""
    return 2 / (1 + math.exp(min(50.0, 5 * y))) - 1


@dataclass(frozen=True, slots=True)
class Judged:
    """One file's rows, ready for any threshold: in-window rows by window, with their credit;
    outside rows with their cost if flagged."""

    windows: list[list[tuple[float, float]]]
    """Per window, (score, credit) of its judged rows."""
    outside: list[tuple[float, float]]
    """(score, cost) of the judged rows outside every window; cost > 0."""
    perfect: float
    """The sum of flagging each window's first judged row and nothing else."""

    def total(self, threshold: float) -> float:
        """S for this file at `threshold`."""
        s = 0.0
        for rows in self.windows:
            credits = [credit for score, credit in rows if score >= threshold]
            s += max(credits) if credits else -1.0
        return s - sum(cost for score, cost in self.outside if score >= threshold)


def merged(windows: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """`windows` in time order, those that overlap joined into one (one anomaly to find)."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(windows):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def judge(rows: Sequence[tuple[float, float]], windows: Sequence[tuple[float, float]]) -> Judged:
    """`rows`: (time, score) in time order; `windows`: labelled [start, end], any order
    (overlapping ones count as one)."""
    ordered = merged(windows)
    starts = [w[0] for w in ordered]
    skip = min(int(PROBATION * len(rows)), PROBATION_ROWS)
    inside: list[list[tuple[float, float]]] = [[] for _ in ordered]
    outside = []
    for t, score in rows[skip:]:
        i = bisect.bisect_right(starts, t) - 1  # the last window starting at or before t
        if i >= 0 and t <= ordered[i][1]:
            start, end = ordered[i]
            inside[i].append((score, sigma((t - end) / (end - start)) if end > start else 1.0))
            continue
        if i < 0:
            outside.append((score, A_FP))
        else:
            start, end = ordered[i]
            y = (t - end) / (end - start) if end > start else math.inf
            outside.append((score, -A_FP * sigma(y)))
    perfect = sum(r[0][1] if r else -1.0 for r in inside)
    return Judged(inside, outside, perfect)


@dataclass(frozen=True, slots=True)
class RowScore:
    """A detector's row score over a corpus: at its best threshold and at 0.5."""

    best: float
    threshold: float
    at_half: float


def normalized(files: Sequence[Judged], threshold: float) -> float:
    null = -sum(len(f.windows) for f in files)
    perfect = sum(f.perfect for f in files)
    if perfect <= null:
        return 0.0
    return 100 * (sum(f.total(threshold) for f in files) - null) / (perfect - null)


def row_score(files: Sequence[Judged]) -> RowScore:
    """The score at the threshold that is best over all `files`, and at 0.5."""
    best, threshold = -math.inf, 1.0
    for candidate in THRESHOLDS:
        value = normalized(files, candidate)
        if value > best:
            best, threshold = value, candidate
    return RowScore(best, threshold, normalized(files, 0.5))
