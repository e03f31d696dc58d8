"""Every metric kpi-pulse exports, built at scrape time from the state this worker owns.

One collector per concern, registered on an injected `CollectorRegistry` (never the global
one): the KPI gauges (`KpiCollector`), the service's own counters (`ServiceCollector`), the
detectors' view (`AnomalyCollector`), plus `pulse_build_info` and client_python's process and
platform collectors. Names, types and help texts come from `streams.export.names`.

The merge stage (`streams.merge.stage`) has a registry of its own (`build_merge_registry`): the
same KPI families holding company-wide values, and its own counters (`MergeCollector`).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Literal, Protocol

from prometheus_client import PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample

from streams.core import NO_WATERMARK, CompiledCatalog, KpiValue, WorkerState
from streams.core.cardinality import LIMITS
from streams.detection.watch import AnomalyWatch
from streams.errors import REJECT_REASONS
from streams.export import names
from streams.export.names import Family, kpi_family

LagSource = Callable[[], Iterable[tuple[str, int, int]]]
"""Returns (topic, partition, lag in messages) for each owned partition."""
BandPolicy = Literal["totals", "all"]
"""Which watched series export their score and band: company totals and series with an open
alert (`totals`), or every watched series (`all`, for debugging a detector)."""

UNIT_HELP = {
    "currency": "in the reporting currency",
    "ratio": "a ratio (0-1 unless it can go negative)",
    "count": "a count",
    "days": "in seconds (the catalog keeps it in days)",
    "seconds": "in seconds",
    "score": "a score",
}


def _family(spec: Family, value: float | None = None) -> GaugeMetricFamily | CounterMetricFamily:
    """An empty (or, given `value`, single-sample) family of `spec`'s type."""
    cls = CounterMetricFamily if spec.type == "counter" else GaugeMetricFamily
    if value is not None:
        return cls(spec.name, spec.help, value=value)
    return cls(spec.name, spec.help, labels=spec.labels or None)


class KpiCollector(Collector):
    """The newest window of every KPI series `latest` returns (this worker's, or the merge
    stage's company-wide values), in base units."""

    def __init__(
        self,
        catalog: CompiledCatalog,
        latest: Callable[[], Iterable[KpiValue]],
        scope: str | None = None,
    ) -> None:
        self._latest = latest
        self._families = {k.name: kpi_family(k) for k in catalog.kpis.values()}
        self._scope = {} if scope is None else {names.SCOPE_LABEL: scope}
        """`scope="worker"` on a worker's partial values when a merge stage publishes the
        company-wide ones (`names.SCOPE_LABEL`)."""

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for spec in self._families.values():
            kpi = spec.kpi
            about = f"{kpi.description} ({UNIT_HELP[kpi.unit]})"
            if spec.type == "summary":
                families[spec.name] = SummaryMetricFamily(spec.name, about)
                continue
            labels = (*kpi.dims, "window", *self._scope)
            families[spec.name] = GaugeMetricFamily(spec.name, about, labels=labels)
            if spec.has_parts:
                for part in (spec.numerator, spec.denominator):
                    families[part] = GaugeMetricFamily(
                        part,
                        f"{part.rsplit('_', 1)[1].capitalize()} of {spec.name}; sum() it, then "
                        f"divide (x {spec.scale.normalize():f}).",
                        labels=labels,
                    )
        window_end = _family(names.WINDOW_END)
        ends: dict[str, int] = {}
        for value in self._latest():
            spec = self._families[value.kpi]
            tags = {**dict(value.labels), "window": value.window, **self._scope}
            if value.value is not None:  # else a zero denominator here: parts only
                family = families[spec.name]
                family.samples.append(Sample(spec.name, tags, float(value.value * spec.factor)))
            if value.numerator is not None and value.denominator is not None:
                for part, amount in (
                    (spec.numerator, value.numerator),
                    (spec.denominator, value.denominator),
                ):
                    families[part].samples.append(Sample(part, tags, float(amount)))
            ends[value.window] = value.end
        for window, end in sorted(ends.items()):
            window_end.add_metric((window,), float(end))
        yield from families.values()
        yield window_end


class ServiceCollector(Collector):
    """What the worker did: events counted and rejected, freshness, bounds hit, lag."""

    def __init__(
        self,
        state: WorkerState,
        lag: LagSource | None = None,
        rebalances: Callable[[], int] | None = None,
    ) -> None:
        self._state = state
        self._lag = lag
        self._rebalances = rebalances

    def collect(self) -> Iterator[Metric]:
        state = self._state
        processed = _family(names.EVENTS_PROCESSED)
        for event_type, count in sorted(state.processed.items()):
            processed.add_metric((event_type,), count)
        yield processed
        rejected = _family(names.EVENTS_REJECTED)
        for reason in REJECT_REASONS:
            rejected.add_metric((reason,), state.rejected.get(reason, 0))
        yield rejected
        restated = _family(names.RESTATEMENTS)
        for (kpi, moved), count in sorted(state.restated.items()):
            restated.add_metric((kpi, "true" if moved else "false"), count)
        yield restated
        unkeyed = _family(names.UNKEYED_EVENTS)
        for topic, count in sorted(state.unkeyed.items()):
            unkeyed.add_metric((topic,), count)
        yield unkeyed
        yield _timestamp(names.LAST_EVENT, state.last_event_time())
        yield _timestamp(names.WATERMARK, state.watermark())
        folded = _family(names.DIMENSION_VALUES_FOLDED)
        guard = state.config.guard
        if guard is not None:
            for dimension in guard.dimensions():
                for limit in LIMITS:
                    folded.add_metric((dimension, limit), guard.folded[(dimension, limit)])
        yield folded
        yield _family(names.DEDUPE_EVICTIONS, state.dedupe_evictions())
        yield _family(names.JOIN_ENTRIES, state.join_entries())
        yield _family(names.JOIN_EVICTIONS, state.join_evictions())
        yield _family(names.JOIN_UNMATCHED, state.join_unmatched())
        if self._lag is not None:
            lag = _family(names.CONSUMER_LAG)
            for topic, partition, behind in self._lag():
                lag.add_metric((topic, str(partition)), behind)
            yield lag
        if self._rebalances is not None:
            yield _family(names.REBALANCES, self._rebalances())


class AnomalyCollector(Collector):
    """The detectors' view: score and band of the exported series, open alerts, stale sources.

    Label sets differ per KPI (`kpi`, `window` and the KPI's own dimensions), so samples are
    added one by one. Values are in the KPI family's base unit (days as seconds)."""

    def __init__(
        self,
        watch: AnomalyWatch,
        cost: Callable[[], float] | None = None,
        bands: BandPolicy = "totals",
    ) -> None:
        self._watch = watch
        self._cost = cost
        self._bands = bands
        self._factors = {k.name: float(kpi_family(k).factor) for k in watch.catalog.kpis.values()}

    def collect(self) -> Iterator[Metric]:
        watch = self._watch
        specs = (
            names.ANOMALY_SCORE,
            names.OBSERVED,
            names.EXPECTED,
            names.EXPECTED_LOWER,
            names.EXPECTED_UPPER,
            names.ANOMALY_ACTIVE,
        )
        score, observed, expected, lower, upper, active = (_family(s) for s in specs)
        for (kpi, window, labels), series in sorted(watch.series.items()):
            result = series.score
            open_ = series.lifecycle.active
            if result is None or not (open_ or not labels or self._bands == "all"):
                continue
            factor = self._factors[kpi]
            tags = {"kpi": kpi, "window": window, **dict(labels)}
            for family, value in (
                (score, result.score),
                (observed, series.observed * factor),
                (expected, result.expected * factor),
                (lower, result.lower * factor),
                (upper, result.upper * factor),
            ):
                family.samples.append(Sample(family.name, tags, value))
            if open_:
                severity = series.lifecycle.severity
                incident = {"incident": series.incident, "incident_role": series.role}
                active.samples.append(
                    Sample(active.name, {**tags, "severity": severity, **incident}, 1.0)
                )
        yield from (score, observed, expected, lower, upper, active)
        stale = _family(names.DATA_STALE)
        silent = watch.completeness.stale()
        for source in watch.completeness.judged():
            stale.add_metric((source,), 1.0 if source in silent else 0.0)
        yield stale
        yield _family(names.DETECTOR_SERIES, len(watch.series))
        yield _family(names.DETECTOR_SERIES_REFUSED, watch.refused)
        if self._cost is not None:
            yield _family(names.DETECTOR_SECONDS, self._cost())


class BuildInfo(Collector):
    def __init__(self) -> None:
        try:
            release = version("kpi-pulse")
        except PackageNotFoundError:  # a source tree that was never installed
            release = "unknown"
        self._labels = {"version": release, "python": platform.python_version()}

    def collect(self) -> Iterator[Metric]:
        spec = names.BUILD_INFO
        info = InfoMetricFamily(spec.name, spec.help)
        info.add_metric((), self._labels)
        yield info


def _timestamp(spec: Family, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(spec.name, spec.help)
    if value != NO_WATERMARK:
        family.add_metric((), value)
    return family


def build_registry(
    state: WorkerState,
    *,
    lag: LagSource | None = None,
    rebalances: Callable[[], int] | None = None,
    watch: AnomalyWatch | None = None,
    detector_cost: Callable[[], float] | None = None,
    bands: BandPolicy = "totals",
    scope: str | None = None,
    process: bool = True,
) -> CollectorRegistry:
    """A fresh registry holding kpi-pulse's collectors (and, with `process`, client_python's
    process and platform collectors). `scope`: the KPI values' `names.SCOPE_LABEL`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KpiCollector(state.config.catalog, state.latest_values, scope))
    registry.register(ServiceCollector(state, lag, rebalances))
    if watch is not None:
        registry.register(AnomalyCollector(watch, detector_cost, bands))
    registry.register(BuildInfo())
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


class MergeView(Protocol):
    """What the merge stage's collector reads (`streams.merge.stage.MergeStage`)."""

    catalog: CompiledCatalog
    partials: int
    dropped: int
    published: int
    rebalances: int

    def latest_values(self) -> list[KpiValue]: ...

    def watermark(self) -> float: ...

    def windows_held(self) -> int: ...


class MergeCollector(Collector):
    """The merge stage's own counters and its company-wide watermark."""

    def __init__(self, stage: MergeView) -> None:
        self._stage = stage

    def collect(self) -> Iterator[Metric]:
        stage = self._stage
        yield _timestamp(names.MERGE_WATERMARK, stage.watermark())
        yield _family(names.MERGE_PARTIALS, stage.partials)
        yield _family(names.MERGE_PARTIALS_DROPPED, stage.dropped)
        yield _family(names.MERGE_VALUES_PUBLISHED, stage.published)
        yield _family(names.MERGE_WINDOWS_HELD, stage.windows_held())
        yield _family(names.MERGE_REBALANCES, stage.rebalances)


def build_merge_registry(
    stage: MergeView,
    *,
    watch: AnomalyWatch | None = None,
    detector_cost: Callable[[], float] | None = None,
    bands: BandPolicy = "totals",
    process: bool = True,
) -> CollectorRegistry:
    """A fresh registry for the merge stage: the company-wide value of each KPI series' newest
    published window (provisional or final) in the workers' families, its own counters, and
    with `watch` the company-wide series' scores, bands and open alerts."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KpiCollector(stage.catalog, stage.latest_values))
    registry.register(MergeCollector(stage))
    if watch is not None:
        registry.register(AnomalyCollector(watch, detector_cost, bands))
    registry.register(BuildInfo())
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry
