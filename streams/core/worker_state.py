"""The state one worker owns: a `PartitionState` per assigned source partition, and counters.

Metrics are read from here at scrape time (`streams.metrics`), so they always reflect exactly the
partitions this worker owns: a revoked partition's series disappear with its state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from streams.core.money import FxTable
from streams.core.partition_state import PartitionState
from streams.core.revenue import Series, merge_window
from streams.core.windows import NO_WATERMARK, TumblingWindows, Watermark
from streams.errors import RejectReason

SourcePartition = tuple[str, int]
"""(topic, partition)."""


@dataclass(frozen=True, slots=True)
class StateConfig:
    window_seconds: int
    watermark_delay: float
    allowed_lateness: float
    dedupe_max_entries: int
    retained_windows: int
    fx: FxTable


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """The newest window closed on every owned partition, with its revenue per series."""

    start: int
    end: int
    revenue: dict[Series, Decimal]


@dataclass
class WorkerState:
    config: StateConfig
    partitions: dict[SourcePartition, PartitionState] = field(default_factory=dict)
    processed: Counter[str] = field(default_factory=Counter)
    rejected: Counter[RejectReason] = field(default_factory=Counter)

    @property
    def windows(self) -> TumblingWindows:
        return TumblingWindows(self.config.window_seconds)

    def new_partition(self) -> PartitionState:
        return PartitionState(
            windows=self.windows,
            watermark=Watermark(self.config.watermark_delay, self.config.allowed_lateness),
            fx=self.config.fx,
            dedupe_max_entries=self.config.dedupe_max_entries,
            retained_windows=self.config.retained_windows,
        )

    def assign(self, source: SourcePartition) -> PartitionState:
        state = self.partitions.get(source)
        if state is None:
            state = self.partitions[source] = self.new_partition()
        return state

    def revoke(self, source: SourcePartition) -> None:
        self.partitions.pop(source, None)

    def watermark(self) -> float:
        """The worker's event-time progress: the slowest owned partition that has data."""
        marks = [p.watermark.value for p in self.partitions.values() if p.has_data]
        return min(marks) if marks else NO_WATERMARK

    def last_event_time(self) -> float:
        times = [p.watermark.max_event_time for p in self.partitions.values() if p.has_data]
        return max(times) if times else NO_WATERMARK

    def closed_window(self) -> ClosedWindow | None:
        start = self.windows.last_closed_start(self.watermark())
        if start is None:
            return None
        revenue = merge_window((p.revenue for p in self.partitions.values()), start)
        return ClosedWindow(start, start + self.config.window_seconds, revenue)

    def dedupe_evictions(self) -> int:
        return sum(p.seen.evicted for p in self.partitions.values())
