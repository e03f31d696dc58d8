"""Every metric name kpi-pulse exports, in one typed place.

The exporter (`streams.export.metrics`) writes these families; the rule, Alertmanager and board
generators (`streams.generate`) query them. Pure: no prometheus_client here, so the generators
depend on names, not on the exporter.

Conventions (checked by `promtool check metrics` on a live `/metrics` in the tests): prefix
`pulse_`, base units (seconds; money in the reporting currency), counters exposed with `_total`,
freshness as `_timestamp_seconds`, quantiles as a summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from streams.core.catalog import RATIO_KINDS, Kpi

FamilyType = Literal["counter", "gauge", "summary", "info"]

DAY_SECONDS = Decimal(86400)


@dataclass(frozen=True)
class Family:
    """A service metric family: its name as registered, its type, help and labels."""

    name: str
    type: FamilyType
    help: str
    labels: tuple[str, ...] = ()

    @property
    def series(self) -> str:
        """The name PromQL selects: counters carry `_total` on the wire, infos `_info`."""
        suffix = {"counter": "_total", "info": "_info"}.get(self.type, "")
        return f"{self.name}{suffix}"


def _counter(name: str, help_: str, labels: tuple[str, ...] = ()) -> Family:
    return Family(name, "counter", help_, labels)


def _gauge(name: str, help_: str, labels: tuple[str, ...] = ()) -> Family:
    return Family(name, "gauge", help_, labels)


EVENTS_PROCESSED = _counter("pulse_events_processed", "Valid events counted, by type.", ("type",))
EVENTS_REJECTED = _counter(
    "pulse_events_rejected", "Messages sent to the dead-letter topic, by reason.", ("reason",)
)
UNKEYED_EVENTS = _counter(
    "pulse_unkeyed_events",
    "Input records read without a Kafka key, by topic (dedupe of resends and joins need one; "
    "PULSE_KEY_POLICY=require dead-letters them).",
    ("topic",),
)
LAST_EVENT = _gauge(
    "pulse_last_event_timestamp_seconds",
    "Newest event time (occurred_at, Unix time) seen on the owned partitions.",
)
WATERMARK = _gauge(
    "pulse_watermark_timestamp_seconds",
    "Event-time watermark of this worker (slowest owned partition), Unix time.",
)
WINDOW_END = _gauge(
    "pulse_window_end_timestamp_seconds",
    "End (Unix time) of the window instance the KPI gauges show, per window; in the future "
    "while that window is still open (balances, cumulative and monthly windows).",
    ("window",),
)
RESTATEMENTS = _counter(
    "pulse_restatements",
    "KPI records of a period already final published again with a new revision (a correction "
    "booked after close), by KPI; material=true when the value moved by more than "
    "PULSE_RESTATEMENT_ALERT_CHANGE from the value first published.",
    ("kpi", "material"),
)
DEDUPE_EVICTIONS = _counter(
    "pulse_dedupe_evictions", "Event ids forgotten early because the dedupe memory was full."
)
JOIN_ENTRIES = _gauge(
    "pulse_join_entries",
    "Order starts and waiting deliveries held by the cycle-time join (owned partitions).",
)
JOIN_EVICTIONS = _counter(
    "pulse_join_evictions",
    "Join entries dropped before their TTL because PULSE_JOIN_MAX_ENTRIES was reached.",
)
JOIN_UNMATCHED = _counter(
    "pulse_join_unmatched",
    "Deliveries given no cycle time: their order was not seen on this partition before their "
    "window became final (never placed here, evicted, or too late).",
)
DIMENSION_VALUES_FOLDED = _counter(
    "pulse_dimension_values_folded",
    "Events whose dimension value was folded into 'other', by the limit that folded it (values "
    "per dimension, combinations per KPI, series in total).",
    ("dimension", "limit"),
)
CONSUMER_LAG = _gauge(
    "pulse_consumer_lag_messages",
    "Messages behind the high-water mark, per owned input partition.",
    ("topic", "partition"),
)
REBALANCES = _counter(
    "pulse_rebalances",
    "Partition assignments this worker received (its first one included).",
)
MERGE_WATERMARK = _gauge(
    "pulse_watermark_timestamp_seconds",
    "Company-wide event-time watermark: the slowest source partition's stated progress.",
)
"""The merge stage's watermark: the workers' family, company-wide."""
MERGE_PARTIALS = _counter(
    "pulse_merge_partials", "Per-partition partials read from the partials topic."
)
MERGE_PARTIALS_DROPPED = _counter(
    "pulse_merge_partials_dropped",
    "Partials of windows already final (republished after a rebalance), left out.",
)
MERGE_VALUES_PUBLISHED = _counter(
    "pulse_merge_values_published", "Company-wide KPI values published to the KPI topic."
)
MERGE_WINDOWS_HELD = _gauge(
    "pulse_merge_windows_held",
    "Window instances held until every source partition has passed them.",
)
MERGE_REBALANCES = _counter(
    "pulse_rebalances",
    "Partition assignments this merge stage received (its first one included).",
)
BUILD_INFO = Family(
    "pulse_build",
    "info",
    "kpi-pulse's version and the Python it runs on (value 1).",
    ("version", "python"),
)

ANOMALY_SCORE = _gauge(
    "pulse_kpi_anomaly_score",
    "Anomaly score of the newest closed window of each exported KPI series (0.5 = band edge).",
)
OBSERVED = _gauge(
    "pulse_kpi_observed",
    "Value of each exported KPI series' newest scored window, as the detectors saw it (company "
    "totals and per-dimension roll-ups included), in the KPI family's base unit.",
)
EXPECTED = _gauge(
    "pulse_kpi_expected", "Expected value of each exported KPI series' newest scored window."
)
EXPECTED_LOWER = _gauge(
    "pulse_kpi_expected_lower", "Lower edge of the expected band of each exported KPI series."
)
EXPECTED_UPPER = _gauge(
    "pulse_kpi_expected_upper", "Upper edge of the expected band of each exported KPI series."
)
ANOMALY_ACTIVE = _gauge(
    "pulse_kpi_anomaly_active",
    "1 on each series with an open anomaly alert (labels severity, incident and incident_role: "
    "root pages, related does not); absent otherwise.",
)
DATA_STALE = _gauge(
    "pulse_data_stale",
    "1 while a source (event type) is silent or behind beyond its usual gaps, else 0.",
    ("source",),
)
DETECTOR_SERIES = _gauge(
    "pulse_detector_series",
    "KPI series the anomaly detectors watch (bounded by PULSE_MAX_WATCHED_SERIES).",
)
DETECTOR_SERIES_REFUSED = _counter(
    "pulse_detector_series_refused",
    "Closed-window values left unscored because the watched series were at their cap.",
)
DETECTOR_SECONDS = _counter(
    "pulse_detector_seconds",
    "Time spent in anomaly detection (detectors, lifecycle, completeness).",
)

BAND_FAMILIES = (
    ("observed", OBSERVED),
    ("expected", EXPECTED),
    ("lower", EXPECTED_LOWER),
    ("upper", EXPECTED_UPPER),
)
"""(legend, family) of the detectors' view of a series, in drawing order."""


@dataclass(frozen=True)
class KpiFamily:
    """How a catalog KPI is exported: its family name in base units, its type, and the factor
    from the catalog's unit to that base unit (days are exported as seconds)."""

    kpi: Kpi
    name: str
    type: FamilyType
    factor: Decimal

    @property
    def numerator(self) -> str:
        return f"{self.name}_numerator"

    @property
    def denominator(self) -> str:
        return f"{self.name}_denominator"

    @property
    def scale(self) -> Decimal:
        """What `sum(numerator) / sum(denominator)` is multiplied by to give the exported value."""
        return self.kpi.scale * self.factor

    @property
    def has_parts(self) -> bool:
        return self.kpi.kind in RATIO_KINDS


def kpi_family(kpi: Kpi) -> KpiFamily:
    """`pulse_<kpi name>`, except that a KPI kept in days (`dso_days`) is exported in seconds
    (`pulse_dso_seconds`), as Prometheus asks for base units; a quantile KPI is a summary."""
    if kpi.unit == "days":
        stem = kpi.name.removesuffix("_days")
        return KpiFamily(kpi, f"pulse_{stem}_seconds", "gauge", DAY_SECONDS)
    kind: FamilyType = "summary" if kpi.kind == "quantile" else "gauge"
    return KpiFamily(kpi, f"pulse_{kpi.name}", kind, Decimal(1))


SCOPE_LABEL = "scope"
"""With a merge stage (`PULSE_MERGE_STAGE`), each worker's own KPI values carry
`scope="worker"` (partial sums over the partitions it owns, for debugging); the stage's
company-wide values carry no scope. Rules and boards select `scope!="worker"`: one worker
without a stage, or the stage, never both."""
WORKER_SCOPE = "worker"
NOT_WORKER = f'{SCOPE_LABEL}!="{WORKER_SCOPE}"'
