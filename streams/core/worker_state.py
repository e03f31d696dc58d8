"""The state one worker owns: a `PartitionState` per assigned source partition, and counters.

Metrics are read from here at scrape time (`streams.export.metrics`), so they always reflect
exactly the partitions this worker owns: a revoked partition's series disappear with its state.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from streams.core.cardinality import CardinalityGuard
from streams.core.compiler import DERIVED_FROM_MINUTES, CompiledCatalog
from streams.core.finalize import TRAILING_DAYS
from streams.core.kpi_values import (
    KpiValue,
    day_sums,
    day_values,
    flow_values,
    merged_bucket,
    period_values,
    span_accs,
    window_accs,
)
from streams.core.measures import MeasureStore
from streams.core.money import FxTable
from streams.core.partition_state import JOIN_MAX_ENTRIES, PartitionState, Windows
from streams.core.windows import DEFAULT_SOURCE_IDLE_SECONDS, NO_WATERMARK, Tumbling, Watermark
from streams.errors import RejectReason

ZERO = Decimal(0)

SourcePartition = tuple[str, int]
"""(topic, partition)."""


@dataclass(frozen=True, slots=True)
class StateConfig:
    catalog: CompiledCatalog
    windows: Windows
    watermark_delay: float
    allowed_lateness: float
    dedupe_max_entries: int
    retained_windows: int
    fx: FxTable
    guard: CardinalityGuard | None = None
    source_idle: float = DEFAULT_SOURCE_IDLE_SECONDS
    join_max_entries: int = JOIN_MAX_ENTRIES
    restatement_alert_change: Decimal = Decimal("0.01")
    """A restated value that moved by more than this from the as-reported one is material."""


@dataclass
class WorkerState:
    config: StateConfig
    partitions: dict[SourcePartition, PartitionState] = field(default_factory=dict)
    processed: Counter[str] = field(default_factory=Counter)
    rejected: Counter[RejectReason] = field(default_factory=Counter)
    unkeyed: Counter[str] = field(default_factory=Counter)
    restated: Counter[tuple[str, bool]] = field(default_factory=Counter)
    """Restated records published (`streams.core.restatements`), by (KPI, material)."""
    """Input records read without a Kafka key, by topic (see `Settings.key_policy`)."""

    def new_partition(self) -> PartitionState:
        config = self.config
        return PartitionState(
            config.catalog,
            config.windows,
            watermark=Watermark(
                config.watermark_delay, config.allowed_lateness, config.source_idle
            ),
            fx=config.fx,
            dedupe_max_entries=config.dedupe_max_entries,
            retained_windows=config.retained_windows,
            guard=config.guard,
            join_max_entries=config.join_max_entries,
        )

    def assign(self, source: SourcePartition) -> PartitionState:
        state = self.partitions.get(source)
        if state is None:
            state = self.partitions[source] = self.new_partition()
        return state

    def revoke(self, source: SourcePartition) -> None:
        self.partitions.pop(source, None)

    def watermark(self) -> float:
        """The worker's event-time progress: the slowest owned partition that has data; none
        while a partition without data may still hold unread events (`PartitionState.unread`),
        so that a backlog read one partition first closes no window early."""
        marks = []
        for part in self.partitions.values():
            if part.has_data:
                marks.append(part.watermark.value)
            elif part.unread:
                return NO_WATERMARK
        return min(marks) if marks else NO_WATERMARK

    def last_event_time(self) -> float:
        times = [p.watermark.max_event_time for p in self.partitions.values() if p.has_data]
        return max(times) if times else NO_WATERMARK

    def dedupe_evictions(self) -> int:
        return sum(p.seen.evicted for p in self.partitions.values())

    def join_entries(self) -> int:
        """Order starts and waiting deliveries the cycle-time join holds, over owned partitions."""
        return sum(len(p.join) for p in self.partitions.values())

    def join_evictions(self) -> int:
        return sum(p.join.evicted for p in self.partitions.values())

    def join_unmatched(self) -> int:
        return sum(p.join.unmatched for p in self.partitions.values())

    def _stores(self) -> list[MeasureStore]:
        return [p.store for p in self.partitions.values()]

    def _quiet_series(
        self, window: str, start: int, end: int, shown: list[KpiValue]
    ) -> list[KpiValue]:
        """Zeros for sum and count KPIs of series that are retained in other instances of this
        window but had nothing in the one shown: a quiet key's revenue is 0, not missing."""
        source = "1m" if window in DERIVED_FROM_MINUTES else window
        kind = self.config.windows.kind(source)
        if not any(
            kind.start_of(s) >= start and s < end
            for p in self.partitions.values()
            for w, s in p.store.buckets
            if w == source
        ):
            return []  # nothing at all in that instance (e.g. before this worker's data began)
        catalog = self.config.catalog
        # Every (measure, dims) retained in this window kind, gathered once per scrape.
        known = {
            key
            for part in self.partitions.values()
            for (name, _), accs in part.store.buckets.items()
            if name == source
            for key in accs
        }
        present = {(v.kpi, v.labels) for v in shown}
        zeros: list[KpiValue] = []
        for kpi in catalog.kpis.values():
            if kpi.kind != "flow" or window not in kpi.windows:
                continue
            for measure, dims in known:
                if measure not in kpi.numerator:
                    continue
                index = [catalog.measures[measure].dims.index(d) for d in kpi.dims]
                labels = tuple(zip(kpi.dims, (dims[i] for i in index), strict=True))
                if (kpi.name, labels) not in present:
                    present.add((kpi.name, labels))
                    zeros.append(KpiValue(kpi.name, window, start, end, labels, ZERO))
        return zeros

    def latest_values(self) -> list[KpiValue]:
        """What /metrics shows: for each window kind, the newest instance closed on every owned
        partition; balances and cumulative KPIs as of the watermark (all counted events)."""
        mark = self.watermark()
        if mark == NO_WATERMARK:
            return []
        windows = self.config.windows
        catalog = self.config.catalog
        stores = self._stores()
        values: list[KpiValue] = []
        for name, kind in windows.flow.items():
            if isinstance(kind, Tumbling):
                start = kind.last_closed_start(mark)
                assert start is not None
            else:
                start = kind.shift(kind.start_of(mark), -1)
            end = kind.end_of(start)
            shown = flow_values(catalog, name, start, end, window_accs(stores, name, start, end))
            values += shown + self._quiet_series(name, start, end, shown)
        month = windows.month.start_of(mark)
        last_month = windows.month.start_of(month - 1)
        values += period_values(
            catalog, "1mo", last_month, month, merged_bucket(stores, ("1mo", last_month))
        )
        if windows.fiscal:  # the last fiscal period and quarter closed, and the year to date
            fiscal = windows.fiscal
            period = fiscal["fp"].start_of(mark)
            closed = fiscal["fp"].start_of(period - 1)
            quarter = fiscal["fq"].start_of(mark)
            closed_quarter = fiscal["fq"].start_of(quarter - 1)
            values += period_values(
                catalog, "fp", closed, period, merged_bucket(stores, ("fp", closed))
            )
            values += period_values(
                catalog, "fq", closed_quarter, quarter, span_accs(stores, closed_quarter, quarter)
            )
            since = fiscal["fytd"].since(closed)
            values += period_values(
                catalog, "fytd", closed, period, span_accs(stores, since, period)
            )
        day = windows.day.start_of(mark)
        closed_day = windows.day.shift(day, -1)
        since = windows.day.shift(closed_day, -(TRAILING_DAYS - 1))
        trailing_kpis = day_values(
            catalog,
            closed_day,
            day,
            day_sums(stores, closed_day),
            day_sums(stores, closed_day, since),
            trailing_start=since,
        )
        running = day_values(catalog, day, windows.day.end_of(day), day_sums(stores, math.inf), {})
        values += [v for v in trailing_kpis if v.window == "30d"]
        values += [v for v in running if v.window in {"balance", "cumulative"}]
        return values
