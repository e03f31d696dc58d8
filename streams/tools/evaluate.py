"""`pulse evaluate`: judge the detectors on simulated weeks with labelled incidents.

(A little over 400 lines: the run, the matching of pages to incidents and the on-call score are
one judgement and read best together; the user's own labelled series are in `evaluate_series`.)

The simulator runs offline with a planned set of incidents (`streams.tools.incidents`); its events
go through the same core as the worker (validation, KPI state, window closing) and the KPI values of
the watched window feed two `AnomalyWatch`es in the same run: ours (`SeriesDetector`) and a plain
EWMA z-score baseline (`EwmaDetector`), both with the same alert lifecycle and completeness gating,
so the comparison is of the detectors alone.

Scoring, per incident kind and over all:
- what is judged are **pages**: an incident's root alert (`streams.detection.incidents`) with the
  alerts related to it; related alerts do not page on their own and are not counted apart, nor
  is a better root that took over an incident's page (one incident, one page);
- a page **matches** an incident when its root's or a related alert's series depends on what the
  incident changed (the KPIs computed from the perturbed measures, with labels that do not
  contradict the incident's dimensions; a `silent_source` incident is matched only by
  `data_stale` of that source) and that alert started between one step before the incident
  and `GRACE_STEPS` steps after its end (the return to normal after a long shift is part of
  the incident);
- **precision** = matching pages / all pages (on every watched series, over the whole run
  after warm-up; KPI alerts caused by a silent source count against it);
- **recall** = incidents with at least one matching page / incidents;
- **time to detect** = event time of the first matching page minus the incident start;
- **on-call score** (0 = never alerting, 100 = every incident paged at its first point and no
  other page; negative when false alarms cost more than silence): what on-call pays, after the
  Numenta Anomaly Benchmark's scoring. Each incident's window W = [start - step, end +
  `GRACE_STEPS` step] (where a matching alert may start). An incident whose first matching alert
  is decided at time a earns `sigma(y) = 2 / (1 + exp(5 y)) - 1` with `y = (a - W.end) / (W.end -
  W.start)` in [-1, 0] (0.987 at the start of the window, 0 at its end), a missed one earns -1,
  and every point (window instance, `step` long) during which a page that matches no incident
  is open costs `A_FP` = 0.11. With N incidents and S the sum, score = 100 (S + N) / (2 N).
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from streams.core import Finalizer, ValidationLimits, Watermark, compile_catalog, decode_event
from streams.core.compiler import CompiledCatalog
from streams.core.money import FxTable
from streams.core.partition_state import PartitionState, Windows
from streams.detection.detectors import Detector, EwmaDetector, SeriesDetector
from streams.detection.watch import STEPS, AnomalyEvent, AnomalyWatch
from streams.tools.incidents import Incident, plan_incidents
from streams.tools.simulator import SimulatedMessage, SimulationConfig, simulate

DAY = 86_400.0
SCENARIOS: dict[str, dict[str, float]] = {
    "default": {},
    "bursty": {"burstiness": 0.5, "amount_sigma": 1.2},
    "sparse": {"rate": 0.05},
}
"""Named scenarios: the clean company; bursty hours (gamma factor, CV 0.5) with heavy-tailed
amounts (lognormal spread 1.2); a company 20x quieter, whose finest series are sparse counts."""
GRACE_STEPS = 6
A_FP = 0.11
"""What one alerting point outside every incident window costs (NAB's standard profile)."""
FLUSH_EVERY = 500
FLUSH_SECONDS = 300.0
"""Closed windows are fed, and sources judged, every `FLUSH_EVERY` events or `FLUSH_SECONDS`
of event time, whichever comes first: a live worker judges its sources every few seconds, and
at 0.05 events/s 500 events are 2.8 hours, longer than a planned silent source lasts."""
TARGET_MEASURES: dict[str, frozenset[str]] = {
    "revenue": frozenset({"revenue", "cogs"}),
    "cogs": frozenset({"cogs"}),
    "opex": frozenset({"opex"}),
    "csat_ratio": frozenset({"csat_satisfied", "nps_promoters", "nps_detractors"}),
    "on_time_delivery_ratio": frozenset({"deliveries_on_time", "cycle_time"}),
}
"""What each incident target perturbs in the simulator (the cost of goods issued follows recent
order values; a degraded survey also lowers NPS; late deliveries also lengthen the order cycle)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    days: float = 21.0
    warmup_days: float = 9.0
    rate: float = 1.0
    weekly_amplitude: float = 0.2
    seed: int = 7
    window: str = "1h"
    gap_hours: float = 6.0
    """Quiet time between incidents."""
    burstiness: float = 0.0
    """Hourly burst factor's coefficient of variation (`SimulationConfig.burstiness`)."""
    amount_sigma: float = 0.5
    """Lognormal spread of order values and expenses (`SimulationConfig.amount_sigma`)."""
    regime_changes: int = 0
    """Persistent revenue level shifts (`regime_changes`), on top of the planned incidents."""

    def __post_init__(self) -> None:
        if self.window not in STEPS:
            raise ValueError(f"window must be one of {sorted(STEPS)}, got {self.window!r}")
        if not 0 <= self.warmup_days < self.days:
            raise ValueError("warmup_days must be >= 0 and below days")
        if self.regime_changes < 0:
            raise ValueError("regime_changes must be >= 0")


@dataclass
class KindScore:
    incidents: int = 0
    detected: int = 0
    alerts: int = 0
    """Alerts matched to incidents of this kind."""
    delays: list[float] = field(default_factory=list)


@dataclass
class DetectorReport:
    name: str
    alerts: int = 0
    matched: int = 0
    kinds: dict[str, KindScore] = field(default_factory=dict)
    false_alarms: list[AnomalyEvent] = field(default_factory=list)
    missed: list[Incident] = field(default_factory=list)
    credit: float = 0.0
    """Sum of sigma(y) over detected incidents (see the module docstring)."""
    false_points: int = 0
    """Alerting points of pages that match no incident."""
    related: int = 0
    """Alerts opened as related to an incident's root: listed with it, not paging."""

    @property
    def oncall(self) -> float:
        """The on-call score (see the module docstring): 0 never alerting, 100 perfect."""
        total = sum(k.incidents for k in self.kinds.values())
        if not total:
            return 0.0
        missed = total - sum(k.detected for k in self.kinds.values())
        earned = self.credit - missed - A_FP * self.false_points
        return 100 * (earned + total) / (2 * total)

    @property
    def precision(self) -> float:
        return self.matched / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        total = sum(k.incidents for k in self.kinds.values())
        return sum(k.detected for k in self.kinds.values()) / total if total else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def median_delay(self, kind: str | None = None) -> float | None:
        delays = [d for name, k in self.kinds.items() if kind in (None, name) for d in k.delays]
        return statistics.median(delays) if delays else None


@dataclass
class Evaluation:
    scenario: Scenario
    incidents: tuple[Incident, ...]
    reports: list[DetectorReport]
    events: int
    seconds: float
    alerts: dict[str, list[AnomalyEvent]] = field(default_factory=dict)
    """Every alert transition per detector (for the verbose listing)."""


def affected_kpis(catalog: CompiledCatalog, target: str) -> frozenset[str]:
    """KPIs computed from what an incident on `target` perturbs, formulas included."""
    measures = TARGET_MEASURES[target]
    hit = {
        k.name
        for k in catalog.kpis.values()
        if k.kind != "formula" and measures & {*k.numerator, *(k.denominator or {})}
    }
    for name in catalog.formula_order:
        if hit & set(catalog.kpis[name].numerator):
            hit.add(name)
    return frozenset(hit)


def matches(alert: AnomalyEvent, incident: Incident, affected: frozenset[str], step: float) -> bool:
    start, end = incident.start - step, incident.end + GRACE_STEPS * step
    if not start <= alert.started_at <= end:
        return False
    if incident.kind == "silent_source":
        return alert.alert == "data_stale" and alert.source == incident.target
    if alert.alert != "kpi_anomaly" or alert.kpi not in affected:
        return False
    labels = dict(alert.dimensions)
    return all(labels.get(k, v) == v for k, v in incident.dimensions)


def onset_credit(at: float, window_start: float, window_end: float) -> float:
    """NAB's scaled sigmoid: 0.987 for a detection at the start of the window, 0 at its end."""
    y = (at - window_end) / (window_end - window_start)
    return 2 / (1 + math.exp(5 * y)) - 1


def alerting_points(
    opened: AnomalyEvent, alerts: Sequence[AnomalyEvent], step: float, until: float
) -> int:
    """Window instances during which the alert `opened` was open: from its first anomalous point
    to its resolution (or `until`), at least the points that opened it."""
    key = (opened.alert, opened.kpi, opened.window, opened.dimensions, opened.source)
    end = until
    for a in alerts:
        if (
            a.state == "resolved"
            and a.at > opened.at
            and (a.alert, a.kpi, a.window, a.dimensions, a.source) == key
        ):
            end = a.at
            break
    return max(1, math.ceil((end - opened.started_at) / step - 1e-9))


def score(
    name: str,
    alerts: Sequence[AnomalyEvent],
    incidents: Sequence[Incident],
    catalog: CompiledCatalog | None,
    step: float,
    *,
    until: float | None = None,
) -> DetectorReport:
    """Score the alerts of one detector against the incidents. `catalog` None: the alerts'
    KPIs are the incidents' targets themselves (a team's own series, `--series`). `until`: the
    end of the run, where an alert still open stops counting (None: the last alert's time)."""
    report = DetectorReport(name)
    if until is None:
        until = max((a.at for a in alerts), default=0.0)
    affected = {
        i: frozenset()
        if i.kind == "silent_source"
        else affected_kpis(catalog, i.target)
        if catalog is not None
        else frozenset({i.target})
        for i in incidents
    }
    for incident in incidents:
        report.kinds.setdefault(incident.kind, KindScore()).incidents += 1
    opened = [a for a in alerts if a.state == "opened"]
    members: dict[str, list[AnomalyEvent]] = {}
    for alert in opened:
        if alert.incident is not None:
            members.setdefault(alert.incident, []).append(alert)
    first: dict[Incident, float] = {}
    paged: set[str] = set()
    for alert in opened:
        if alert.role == "related" or (alert.incident is not None and alert.incident in paged):
            report.related += 1
            continue  # it does not page (or its incident's page moved to it): the root does
        if alert.incident is not None:
            paged.add(alert.incident)
        report.alerts += 1
        group = members.get(alert.incident, [alert]) if alert.incident else [alert]
        hits = [i for i in incidents if any(matches(a, i, affected[i], step) for a in group)]
        if not hits:
            report.false_alarms.append(alert)
            report.false_points += alerting_points(alert, alerts, step, until)
            continue
        report.matched += 1
        for incident in hits:
            report.kinds[incident.kind].alerts += 1
            first[incident] = min(first.get(incident, math.inf), alert.at)
    for incident, at in first.items():
        kind = report.kinds[incident.kind]
        kind.detected += 1
        kind.delays.append(max(0.0, at - incident.start))
        window_end = incident.end + GRACE_STEPS * step
        report.credit += onset_credit(min(at, window_end), incident.start - step, window_end)
    report.missed = [i for i in incidents if i not in first]
    return report


def regime_changes(
    scenario: Scenario, begin: float, duration: float
) -> tuple[tuple[Incident, ...], tuple[Incident, ...]]:
    """`scenario.regime_changes` persistent level shifts of one business unit's revenue (+-40%),
    each from a whole hour after the warm-up to the end of the run: (what the simulator applies,
    what is labelled). The label is the onset only, one hour: a detector should page once at the
    change and then take the new level as normal, so alerting on later points costs."""
    rng = random.Random(scenario.seed + 1)
    held: list[Incident] = []
    labels: list[Incident] = []
    first = begin + scenario.warmup_days * DAY
    end = math.floor(begin + duration)
    for _ in range(scenario.regime_changes):
        at = math.floor(rng.uniform(first, end - DAY) / 3600) * 3600
        dims = (("business_unit", rng.choice(("retail", "wholesale", "marketplace"))),)
        magnitude = rng.choice((-0.4, 0.4))
        held.append(Incident("level_shift", "revenue", at, end, magnitude, dims))
        labels.append(Incident("level_shift", "revenue", at, at + 3600, magnitude, dims))
    return tuple(held), tuple(labels)


def run(scenario: Scenario, progress: TextIO | None = None) -> Evaluation:
    """Simulate the scenario and score both detectors."""
    started = time.perf_counter()
    catalog = compile_catalog()
    begin = scenario.start.timestamp()
    duration = scenario.days * DAY
    incidents = plan_incidents(begin, duration, scenario.seed, warmup=scenario.warmup_days * DAY)
    held, labels = regime_changes(scenario, begin, duration)
    config = SimulationConfig(
        start=scenario.start,
        seed=scenario.seed,
        rate=scenario.rate,
        duration=duration,
        bad_ratio=0.0,
        weekly_amplitude=scenario.weekly_amplitude,
        incidents=incidents + held,
        burstiness=scenario.burstiness,
        amount_sigma=scenario.amount_sigma,
    )
    windows = Windows.for_timezone(ZoneInfo("UTC"))
    state = PartitionState(
        catalog,
        windows,
        watermark=Watermark(5.0, 0.0),
        fx=FxTable("EUR", {}),
        dedupe_max_entries=200_000,
        retained_windows=2,
    )
    closing = Finalizer(catalog, windows, 0.0, only=frozenset({scenario.window}))
    watched = frozenset({scenario.window})
    factories: list[tuple[str, Callable[[float], Detector]]] = [
        ("kpi-pulse", SeriesDetector),
        ("ewma z-score", lambda step: EwmaDetector()),
    ]
    watches = [(n, AnomalyWatch(catalog, detector=f, windows=watched)) for n, f in factories]
    limits = ValidationLimits(65_536, 300.0)
    next_report = begin + DAY

    def report(at: float, count: int) -> None:
        nonlocal next_report
        if progress is not None and at >= next_report:
            progress.write(
                f"evaluate: day {(at - begin) / DAY:.0f} of {scenario.days:g}, {count} events\n"
            )
            next_report += DAY

    found, count = replay(
        simulate(config),
        state,
        closing,
        [watch for _, watch in watches],
        limits=limits,
        span=(begin, begin + duration),
        now=begin + duration + DAY,
        report=report,
    )
    alerts = {name: events for (name, _), events in zip(watches, found, strict=True)}
    step = STEPS[scenario.window]
    warm = begin + scenario.warmup_days * DAY
    incidents += labels
    reports = [
        score(
            name,
            [a for a in alerts[name] if a.at >= warm - 2 * DAY],
            incidents,
            catalog,
            step,
            until=begin + duration,
        )
        for name, _ in factories
    ]
    return Evaluation(scenario, incidents, reports, count, time.perf_counter() - started, alerts)


def replay(
    messages: Iterable[SimulatedMessage],
    state: PartitionState,
    closing: Finalizer,
    watches: Sequence[AnomalyWatch],
    *,
    limits: ValidationLimits,
    span: tuple[float, float],
    now: float = math.inf,
    flush_seconds: float = FLUSH_SECONDS,
    report: Callable[[float, int], None] | None = None,
) -> tuple[list[list[AnomalyEvent]], int]:
    """Replay `messages` (of event times within `span`) through the core and every watch, as a
    live worker would: closed windows go to the watches, and sources are judged, every
    `FLUSH_EVERY` events or `flush_seconds` of event time, then once more at the span's end.
    `now` is the wall clock the events are decoded and applied at; `report(event time, events)`
    follows each flush. Returns each watch's alert transitions and the number of events."""
    alerts: list[list[AnomalyEvent]] = [[] for _ in watches]

    def flush(mark: float) -> None:
        values = closing.close(state, mark)
        for own, watch in zip(alerts, watches, strict=True):
            own.extend(watch.observe_values(values, mark))

    count = 0
    flushed = span[0]
    for message in messages:
        event = decode_event(message.value, limits, now)
        state.apply(event, now)
        for watch in watches:
            watch.observe_event(event.type, message.occurred_at)
        count += 1
        if count % FLUSH_EVERY == 0 or message.occurred_at >= flushed + flush_seconds:
            flushed = message.occurred_at
            flush(state.watermark.value)
            if report is not None:
                report(message.occurred_at, count)
    flush(span[1])
    return alerts, count


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.2f}{unit}"


def table(evaluation: Evaluation) -> str:
    """A plain-text table: per detector, per incident kind and over all."""
    lines = [
        "detector       kind                incidents  detected  recall  median time to detect",
    ]
    for report in evaluation.reports:
        for kind, k in sorted(report.kinds.items()):
            delay = report.median_delay(kind)
            lines.append(
                f"{report.name:<14} {kind:<19} {k.incidents:>9}  {k.detected:>8}  "
                f"{k.detected / k.incidents if k.incidents else 1.0:>6.2f}  "
                f"{_fmt(delay / 60 if delay is not None else None, ' min')}"
            )
        delay = report.median_delay()
        lines.append(
            f"{report.name:<14} ALL: precision {report.precision:.2f}  recall "
            f"{report.recall:.2f}  F1 {report.f1:.2f}  pages {report.alerts} "
            f"(false {len(report.false_alarms)}; {report.related} related alerts did not page)  "
            "median time to detect "
            f"{_fmt(delay / 60 if delay is not None else None, ' min')}"
        )
        lines.append(
            f"{report.name:<14} on-call score {report.oncall:.1f} (onset credit "
            f"{report.credit:.2f}, false alerting points {report.false_points})"
        )
    return "\n".join(lines)


def describe(alert: AnomalyEvent) -> str:
    when = datetime.fromtimestamp(alert.started_at, UTC).strftime("%Y-%m-%d %H:%M")
    what = alert.source if alert.alert == "data_stale" else alert.kpi
    dims = ",".join(f"{k}={v}" for k, v in alert.dimensions)
    return f"{when} {alert.alert} {what}{{{dims}}} score {alert.score:.2f}"


def main_report(evaluation: Evaluation, out: TextIO, verbose: bool = False) -> None:
    s = evaluation.scenario
    out.write(
        f"evaluate: {s.days:g} simulated days from {s.start:%Y-%m-%d} at {s.rate:g} events/s "
        f"(seed {s.seed}, burstiness {s.burstiness:g}, amount sigma {s.amount_sigma:g}), "
        f"window {s.window}, warm-up {s.warmup_days:g} days, "
        f"{len(evaluation.incidents)} incidents, {evaluation.events} events in "
        f"{evaluation.seconds:.0f} s\n"
    )
    out.write(table(evaluation) + "\n")
    if verbose:
        step = STEPS[s.window]
        end = s.start.timestamp() + s.days * DAY
        for report in evaluation.reports:
            for alert in report.false_alarms:
                points = alerting_points(alert, evaluation.alerts[report.name], step, end)
                out.write(f"false alarm ({report.name}): {describe(alert)}, open {points} points\n")
            for incident in report.missed:
                when = datetime.fromtimestamp(incident.start, UTC).strftime("%Y-%m-%d %H:%M")
                out.write(f"missed ({report.name}): {when} {incident.kind} {incident.series}\n")


if __name__ == "__main__":  # pragma: no cover - manual runs
    main_report(run(Scenario(), sys.stderr), sys.stdout, verbose=True)
