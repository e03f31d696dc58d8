"""What the page's sparklines draw: the recent scored points of each company-wide series.

The anomaly watch keeps only the newest score of a series (what /metrics shows); a sparkline
needs the ones before. `History.sample` copies each total series' newest point (its value, and
the expected value and band the detector gave it) whenever the watch has scored a newer window
instance, and counts throughput from the worker's durable counters. It is memory of what the
watch said, never a value of its own: a series the watch forgets (or a watch reset after a
rebalance) leaves the history too. A sampler that runs every second misses the instances a
single catch-up batch scores at once; live, windows close a minute apart and none is missed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.core import KpiValue, StateConfig
from streams.detection.watch import AnomalyWatch

POINTS = 90
"""Points kept per series (an hour and a half of 1-minute windows)."""
RATE_SPAN_S = 10.0
"""Throughput is averaged over about this many seconds."""


class PageState(Protocol):
    """What the page reads of the process serving it: a worker's `WorkerState`, or the merge
    stage's company-wide view (`streams.merge.stage.StageView`)."""

    @property
    def config(self) -> StateConfig: ...

    @property
    def processed(self) -> Mapping[str, int]: ...

    @property
    def rejected(self) -> Mapping[Any, int]: ...

    @property
    def partitions(self) -> Mapping[Any, object]: ...

    def latest_values(self) -> list[KpiValue]: ...

    def watermark(self) -> float: ...

    def last_event_time(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Point:
    start: float
    """Start of the window instance (epoch seconds)."""
    observed: float
    expected: float
    lower: float
    upper: float
    score: float


@dataclass
class History:
    points: int = POINTS
    series: dict[tuple[str, str], deque[Point]] = field(default_factory=dict)
    """(kpi, window) of a company-wide series -> its recent points, oldest first."""
    _counted: deque[tuple[float, int]] = field(default_factory=deque)

    def sample(self, state: PageState, watch: AnomalyWatch | None, now: float) -> None:
        """Record the newest points of the watch's total series (at `now`, monotonic seconds)."""
        counted = sum(state.processed.values()) + sum(state.rejected.values())
        self._counted.append((now, counted))
        while len(self._counted) > 2 and now - self._counted[1][0] >= RATE_SPAN_S:
            self._counted.popleft()
        if watch is None:
            return
        totals = {
            (kpi, window): s
            for (kpi, window, labels), s in watch.series.items()
            if not labels and s.score is not None
        }
        for key in [k for k in self.series if k not in totals]:
            del self.series[key]
        for key, s in totals.items():
            assert s.score is not None
            kept = self.series.setdefault(key, deque(maxlen=self.points))
            if kept and s.last_start < kept[-1].start:
                kept.clear()  # relearned from scratch (a reset): the old points meant others
            if kept and s.last_start == kept[-1].start:
                continue
            sc = s.score
            kept.append(Point(s.last_start, s.observed, sc.expected, sc.lower, sc.upper, sc.score))

    def throughput(self) -> float | None:
        """Events counted per second (valid and dead-lettered) over the last seconds; None
        before two samples."""
        if len(self._counted) < 2:
            return None
        (t0, n0), (t1, n1) = self._counted[0], self._counted[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None
