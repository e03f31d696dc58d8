"""Every metric kpi-pulse exports, built at scrape time from the state this worker owns.

Register `PulseCollector` on an injected `CollectorRegistry` (never the global one). Names follow
Prometheus conventions: prefix `pulse_`, base units (seconds; money in the reporting currency),
counters ending `_total`, freshness as `_timestamp_seconds`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from streams.core import NO_WATERMARK, WorkerState
from streams.core.cardinality import LIMITS
from streams.core.catalog import RATIO_KINDS
from streams.detection.watch import AnomalyWatch
from streams.errors import REJECT_REASONS

MetricName = Literal[
    "pulse_events_processed",
    "pulse_events_rejected",
    "pulse_unkeyed_events",
    "pulse_last_event_timestamp_seconds",
    "pulse_watermark_timestamp_seconds",
    "pulse_window_end_timestamp_seconds",
    "pulse_dedupe_evictions",
    "pulse_join_entries",
    "pulse_join_evictions",
    "pulse_join_unmatched",
    "pulse_dimension_values_folded",
    "pulse_consumer_lag_messages",
    "pulse_kpi_anomaly_score",
    "pulse_kpi_observed",
    "pulse_kpi_expected",
    "pulse_kpi_expected_lower",
    "pulse_kpi_expected_upper",
    "pulse_kpi_anomaly_active",
    "pulse_data_stale",
    "pulse_detector_seconds",
    "pulse_detector_series",
    "pulse_detector_series_refused",
    "pulse_rebalances",
]
"""Service families (counters get `_total` appended on output). KPI families are
`pulse_<kpi name>` from the catalog, plus `_numerator` and `_denominator` for ratios."""

LagSource = Callable[[], Iterable[tuple[str, int, int]]]
"""Returns (topic, partition, lag in messages) for each owned partition."""

UNIT_HELP = {
    "currency": "in the reporting currency",
    "ratio": "a ratio (0-1 unless it can go negative)",
    "count": "a count",
    "days": "in days",
    "seconds": "in seconds",
    "score": "a score",
}


class PulseCollector(Collector):
    """Reads `WorkerState` (and, when given, consumer lag and the anomaly watch) on every
    scrape."""

    def __init__(
        self,
        state: WorkerState,
        lag: LagSource | None = None,
        watch: AnomalyWatch | None = None,
        detector_cost: Callable[[], float] | None = None,
        rebalances: Callable[[], int] | None = None,
    ) -> None:
        self._state = state
        self._lag = lag
        self._watch = watch
        self._detector_cost = detector_cost
        self._rebalances = rebalances

    def collect(self) -> Iterator[Metric]:
        yield from self._kpis()
        yield from self._service()
        if self._watch is not None:
            yield from self._anomalies(self._watch)

    def _anomalies(self, watch: AnomalyWatch) -> Iterator[Metric]:
        """Per series: score, band and whether an alert is open. Label sets differ per KPI
        (`kpi`, `window` and the KPI's own dimensions), so samples are added one by one."""
        score = GaugeMetricFamily(
            "pulse_kpi_anomaly_score",
            "Anomaly score of the newest closed window of each KPI series (0.5 = band edge).",
        )
        observed = GaugeMetricFamily(
            "pulse_kpi_observed",
            "Value of each KPI series' newest scored window, as the detectors saw it (series "
            "totals and per-dimension roll-ups included).",
        )
        expected = GaugeMetricFamily(
            "pulse_kpi_expected", "Expected value of each KPI series' newest scored window."
        )
        lower = GaugeMetricFamily(
            "pulse_kpi_expected_lower", "Lower edge of the expected band of each KPI series."
        )
        upper = GaugeMetricFamily(
            "pulse_kpi_expected_upper", "Upper edge of the expected band of each KPI series."
        )
        active = GaugeMetricFamily(
            "pulse_kpi_anomaly_active",
            "1 while an anomaly alert is open on the series (labels severity, incident and "
            "incident_role: root pages, related is inhibited by its root), else 0.",
        )
        for (kpi, window, labels), series in sorted(watch.series.items()):
            result = series.score
            if result is None:
                continue
            names = {"kpi": kpi, "window": window, **dict(labels)}
            score.samples.append(Sample(score.name, names, result.score))
            observed.samples.append(Sample(observed.name, names, series.observed))
            expected.samples.append(Sample(expected.name, names, result.expected))
            lower.samples.append(Sample(lower.name, names, result.lower))
            upper.samples.append(Sample(upper.name, names, result.upper))
            open_ = series.lifecycle.active
            severity = series.lifecycle.severity if open_ else "none"
            incident = {"incident": series.incident, "incident_role": series.role} if open_ else {}
            active.samples.append(
                Sample(
                    active.name, {**names, "severity": severity, **incident}, 1.0 if open_ else 0.0
                )
            )
        yield from (score, observed, expected, lower, upper, active)
        stale = GaugeMetricFamily(
            "pulse_data_stale",
            "1 while a source (event type) is silent or behind beyond its usual gaps, else 0.",
            labels=("source",),
        )
        silent = watch.completeness.stale()
        for source in watch.completeness.judged():
            stale.add_metric((source,), 1.0 if source in silent else 0.0)
        yield stale
        yield GaugeMetricFamily(
            "pulse_detector_series",
            "KPI series the anomaly detectors watch (bounded by PULSE_MAX_WATCHED_SERIES).",
            value=len(watch.series),
        )
        yield CounterMetricFamily(
            "pulse_detector_series_refused",
            "Closed-window values left unscored because the watched series were at their cap.",
            value=watch.refused,
        )
        if self._detector_cost is not None:
            yield CounterMetricFamily(
                "pulse_detector_seconds",
                "Time spent in anomaly detection (detectors, lifecycle, completeness).",
                value=self._detector_cost(),
            )

    def _kpis(self) -> Iterator[Metric]:
        catalog = self._state.config.catalog
        families: dict[str, GaugeMetricFamily] = {}
        for kpi in catalog.kpis.values():
            labels = (*kpi.dims, *(("quantile",) if kpi.kind == "quantile" else ()), "window")
            about = f"{kpi.description} ({UNIT_HELP[kpi.unit]})"
            families[kpi.name] = GaugeMetricFamily(f"pulse_{kpi.name}", about, labels=labels)
            if kpi.kind in RATIO_KINDS:
                for part in ("numerator", "denominator"):
                    families[f"{kpi.name}_{part}"] = GaugeMetricFamily(
                        f"pulse_{kpi.name}_{part}",
                        f"{part.capitalize()} of {kpi.name}; sum() it, then divide.",
                        labels=labels,
                    )
        window_end = GaugeMetricFamily(
            "pulse_window_end_timestamp_seconds",
            "End (Unix time) of the window instance the KPI gauges show, per window.",
            labels=("window",),
        )
        ends: dict[str, int] = {}
        for value in self._state.latest_values():
            values = [v for _, v in value.labels]
            if value.value is not None:  # else a zero denominator here: parts only
                families[value.kpi].add_metric([*values, value.window], float(value.value))
            if value.numerator is not None and value.denominator is not None:
                families[f"{value.kpi}_numerator"].add_metric(
                    [*values, value.window], float(value.numerator)
                )
                families[f"{value.kpi}_denominator"].add_metric(
                    [*values, value.window], float(value.denominator)
                )
            ends[value.window] = value.end
        for window, end in sorted(ends.items()):
            window_end.add_metric((window,), float(end))
        yield from families.values()
        yield window_end

    def _service(self) -> Iterator[Metric]:
        state = self._state
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

        unkeyed = CounterMetricFamily(
            "pulse_unkeyed_events",
            "Input records read without a Kafka key, by topic (dedupe of resends and joins need "
            "one; PULSE_KEY_POLICY=require dead-letters them).",
            labels=("topic",),
        )
        for topic, count in sorted(state.unkeyed.items()):
            unkeyed.add_metric((topic,), count)
        yield unkeyed

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
        folded = CounterMetricFamily(
            "pulse_dimension_values_folded",
            "Events whose dimension value was folded into 'other', by the limit that folded it "
            "(values per dimension, combinations per KPI, series in total).",
            labels=("dimension", "limit"),
        )
        guard = state.config.guard
        if guard is not None:
            for dimension in guard.dimensions():
                for limit in LIMITS:
                    folded.add_metric((dimension, limit), guard.folded[(dimension, limit)])
        yield folded
        yield CounterMetricFamily(
            "pulse_dedupe_evictions",
            "Event ids forgotten early because the dedupe memory was full.",
            value=state.dedupe_evictions(),
        )
        yield GaugeMetricFamily(
            "pulse_join_entries",
            "Order starts and waiting deliveries held by the cycle-time join (owned partitions).",
            value=state.join_entries(),
        )
        yield CounterMetricFamily(
            "pulse_join_evictions",
            "Join entries dropped before their TTL because PULSE_JOIN_MAX_ENTRIES was reached.",
            value=state.join_evictions(),
        )
        yield CounterMetricFamily(
            "pulse_join_unmatched",
            "Deliveries given no cycle time: their order was not seen on this partition before "
            "their window became final (never placed here, evicted, or too late).",
            value=state.join_unmatched(),
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
        if self._rebalances is not None:
            yield CounterMetricFamily(
                "pulse_rebalances",
                "Partition assignments this worker received (its first one included).",
                value=self._rebalances(),
            )


def _timestamp(name: MetricName, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    if value != NO_WATERMARK:
        family.add_metric((), value)
    return family


def build_registry(
    state: WorkerState,
    lag: LagSource | None = None,
    watch: AnomalyWatch | None = None,
    detector_cost: Callable[[], float] | None = None,
    rebalances: Callable[[], int] | None = None,
) -> CollectorRegistry:
    """A fresh registry holding only kpi-pulse's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PulseCollector(state, lag, watch, detector_cost, rebalances))
    return registry
