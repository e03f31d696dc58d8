"""Every metric kpi-pulse exports, built at scrape time from the state this worker owns.

Register `PulseCollector` on an injected `CollectorRegistry` (never the global one). Names follow
Prometheus conventions: prefix `pulse_`, base units (seconds; money in the reporting currency),
counters ending `_total`, freshness as `_timestamp_seconds`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final, Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from streams.core import NO_WATERMARK, WorkerState
from streams.errors import REJECT_REASONS

MetricName = Literal[
    "pulse_revenue",
    "pulse_events_processed",
    "pulse_events_rejected",
    "pulse_last_event_timestamp_seconds",
    "pulse_watermark_timestamp_seconds",
    "pulse_window_end_timestamp_seconds",
    "pulse_dedupe_evictions",
    "pulse_consumer_lag_messages",
]
"""Family names as `prometheus_client` takes them (counters get `_total` appended on output)."""

KPI_LABELS: Final = ("business_unit", "region", "window")

LagSource = Callable[[], Iterable[tuple[str, int, int]]]
"""Returns (topic, partition, lag in messages) for each owned partition."""


def window_label(seconds: int) -> str:
    """`60` → `1m`, `3600` → `1h`: the `window` label value for a window size."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class PulseCollector(Collector):
    """Reads `WorkerState` (and, when given, consumer lag) on every scrape."""

    def __init__(self, state: WorkerState, lag: LagSource | None = None) -> None:
        self._state = state
        self._lag = lag

    def collect(self) -> Iterator[Metric]:
        state = self._state
        window = window_label(state.config.window_seconds)
        revenue = GaugeMetricFamily(
            "pulse_revenue",
            "Revenue (orders - cancellations - refunds) of the newest closed event-time window, "
            "in the reporting currency; sum() across workers for the total.",
            labels=KPI_LABELS,
        )
        window_end = GaugeMetricFamily(
            "pulse_window_end_timestamp_seconds",
            "End (Unix time) of the window whose values the KPI gauges show.",
            labels=("window",),
        )
        closed = state.closed_window()
        if closed is not None:
            for (business_unit, region), value in sorted(closed.revenue.items()):
                revenue.add_metric((business_unit, region, window), float(value))
            window_end.add_metric((window,), float(closed.end))
        yield revenue
        yield window_end

        processed = CounterMetricFamily(
            "pulse_events_processed", "Valid events counted, by type.", labels=("type",)
        )
        for event_type, count in sorted(state.processed.items()):
            processed.add_metric((event_type,), count)
        yield processed

        rejected = CounterMetricFamily(
            "pulse_events_rejected",
            "Messages sent to the dead-letter topic, by reason.",
            labels=("reason",),
        )
        for reason in REJECT_REASONS:
            rejected.add_metric((reason,), state.rejected.get(reason, 0))
        yield rejected

        yield _timestamp(
            "pulse_last_event_timestamp_seconds",
            "Newest event time (occurred_at, Unix time) seen on the owned partitions.",
            state.last_event_time(),
        )
        yield _timestamp(
            "pulse_watermark_timestamp_seconds",
            "Event-time watermark of this worker (slowest owned partition), Unix time.",
            state.watermark(),
        )
        yield CounterMetricFamily(
            "pulse_dedupe_evictions",
            "Event ids forgotten early because the dedupe memory was full.",
            value=state.dedupe_evictions(),
        )
        if self._lag is not None:
            lag = GaugeMetricFamily(
                "pulse_consumer_lag_messages",
                "Messages behind the high-water mark, per owned input partition.",
                labels=("topic", "partition"),
            )
            for topic, partition, behind in self._lag():
                lag.add_metric((topic, str(partition)), behind)
            yield lag


def _timestamp(name: MetricName, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    if value != NO_WATERMARK:
        family.add_metric((), value)
    return family


def build_registry(state: WorkerState, lag: LagSource | None = None) -> CollectorRegistry:
    """A fresh registry holding only kpi-pulse's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PulseCollector(state, lag))
    return registry
