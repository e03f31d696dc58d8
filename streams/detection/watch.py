"""Every KPI series watched: detectors, alert lifecycle, completeness gating and explanations.

`AnomalyWatch` takes the KPI values of closed windows (in time order, as the finalizer emits them)
and the events' sources, and returns alert transitions (`AnomalyEvent`): a KPI series' anomaly
opened or resolved, or a source's `data_stale` opened or resolved. One detector and one lifecycle
per series (KPI x dimension values x window), each updated once per closed window instance.

- A flow KPI (a sum or count) with no value in a closed instance is 0 there: a series that
  stops is a drop, not a gap (series seen in the last `ZERO_FILL_STEPS` instances are filled).
- While a source a series depends on is stale, or for windows that overlap a past outage of it,
  the series neither learns nor alerts: incomplete data is neither normal nor an anomaly.
- Bounded (live): at most `max_series` series are watched, totals and per-dimension roll-ups
  first; a series with no value of its own for `idle_steps` of its windows is forgotten (zeros
  filled in for a quiet flow series do not count), unless its alert is open.
- Static catalog thresholds count at business-day granularity and above (`1d`, `30d`, balances,
  cumulative, `1mo`), where finance sets them; at minute and hour level one segment's sample is
  too small for a fixed bound.
- Alerts that open together and share a cause are one incident (`streams.detection.incidents`):
  the root pages, related alerts are listed and resolve with it.
Pure: no Kafka, no Prometheus. The worker feeds it; `pulse evaluate` and tests feed it offline.
(Longer than most modules: one closed window instance goes through roll-ups, gaps, caps,
detectors, lifecycles, incidents and explanations in order, over the same per-series state;
split apart, each step would need the others' bookkeeping.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from streams.core.catalog import FOLLOWS
from streams.core.compiler import CompiledCatalog
from streams.core.kpi_values import KpiValue, ratio
from streams.detection.alerts import AlertPolicy, Lifecycle, Severity, Transition, static_severity
from streams.detection.baseline import ACCEPT_POINTS
from streams.detection.completeness import Completeness
from streams.detection.detectors import Detector, Score, SeriesDetector
from streams.detection.explain import Explanation, Point, explain, input_kpis
from streams.detection.incidents import Incidents, Membership, Opening, Role, series_name

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, str, Labels]
"""(kpi, window, labels)."""

STEPS: dict[str, float] = {
    "1m": 60.0,
    "5m": 300.0,
    "1h": 3600.0,
    "1d": 86_400.0,
    "30d": 86_400.0,
    "balance": 86_400.0,
    "cumulative": 86_400.0,
    "1mo": 30 * 86_400.0,
    "fp": 30 * 86_400.0,
    "fq": 91 * 86_400.0,
    "fytd": 30 * 86_400.0,
}
"""Spacing of each window's series: day-end KPIs are emitted once per business day."""
STATIC_WINDOWS = frozenset({"1d", "30d", "balance", "cumulative", "1mo", "fp", "fq", "fytd"})
MIN_SUPPORT = 10
"""A ratio over counted events (CSAT answers, deliveries, orders) is judged only when at least
this many events are behind it; fewer is a sample too small to mean anything alone, pooled with
the next instances' samples until the pool holds this many (`POOL_STEPS`). Above it
the detector weighs the point by its sample (`Detector.update`'s `weight`): a ratio over 10
events has a band twice as wide as one over 40."""
POOL_STEPS = 24
"""A counted ratio's sample below `MIN_SUPPORT` is pooled with the following instances' samples
(numerators and denominators summed) until the pool holds `MIN_SUPPORT` events, for at most this
many window instances (a day of an hourly series); an older pool is dropped unjudged."""
ZERO_FILL_STEPS = 48
NO_DATA_STEPS = 2
"""An open alert whose series has no value to judge for this many window instances in a row
resolves ("no data"): a ratio whose sample fell below `MIN_SUPPORT` overnight must not hold a
page open for days."""
CALM_INPUTS_SCORE = 0.45
"""What a point of a KPI whose inputs all stayed within their bands may open on at most: below
the open score (0.5), so it does not open an alert (the score shown is the detector's)."""
HORIZON_STEPS = 400
IDLE_STEPS = 2 * ZERO_FILL_STEPS
"""Live, a series without a value of its own for this many of its windows (96 minutes of 1m, 8 h
of 5m, 4 days of 1h, 96 business days) is forgotten: long enough to score a stopped flow series'
drop on the zeros filled in for it, short enough that a flood of one-off labels leaves."""
"""Live, window instances older than this many steps are not fed to the detectors (more than
their warm-up needs)."""


@dataclass(frozen=True, slots=True)
class AnomalyEvent:
    """One message of `<prefix>.anomalies`."""

    alert: Literal["kpi_anomaly", "data_stale"]
    state: Literal["opened", "resolved"]
    severity: Severity
    started_at: float
    at: float
    """Event time the decision was made at (end of the window instance, or the clock)."""
    kpi: str | None = None
    window: str | None = None
    dimensions: Labels = ()
    window_start: float | None = None
    window_end: float | None = None
    observed: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    score: float = 0.0
    source: str | None = None
    explanation: Explanation | None = None
    incident: str | None = None
    """The incident a KPI alert belongs to (`streams.detection.incidents`)."""
    role: Role | None = None
    """root: the alert that pages for its incident; related: listed, does not page."""


@dataclass(slots=True)
class Series:
    """The watched state of one series (what /metrics shows)."""

    detector: Detector
    lifecycle: Lifecycle
    last_start: float = float("-inf")
    last_seen: float = float("-inf")
    """Start of the newest instance with a value of its own (not a filled-in 0)."""
    observed: float = 0.0
    score: Score | None = None
    missed: int = 0
    """Window instances in a row without a value to judge while its alert is open."""
    last_missed: float = float("-inf")
    """Start of the newest instance counted in `missed` (an instance closes more than once)."""
    contiguous: bool = True
    """The newest point follows the one before it without a missing window instance."""
    incident: str = ""
    """While its alert is open: the incident it belongs to, and its role there."""
    role: str = ""
    pool_numerator: Decimal = Decimal(0)
    pool_denominator: Decimal = Decimal(0)
    """A counted ratio's events since its last judged point, while fewer than `MIN_SUPPORT`."""
    pool_since: float = float("inf")
    """Start of the oldest window instance in the pool (inf: empty)."""
    pooled_at: float = float("-inf")
    """Start of the newest window instance pooled (an instance closes more than once)."""

    def clear_pool(self) -> None:
        self.pool_numerator, self.pool_denominator = Decimal(0), Decimal(0)
        self.pool_since = math.inf


_ZERO = Decimal(0)


def rollups(catalog: CompiledCatalog, values: Iterable[KpiValue]) -> list[KpiValue]:
    """Each additive KPI also in total and per single dimension (revenue; revenue by region;
    revenue by business unit): what an ops board shows first, and where an incident spread over
    many small series stands out of the noise. Sums add up; ratios are recomputed from summed
    numerators and denominators; quantiles do not add up and are not rolled up."""
    sums: dict[tuple[str, Labels], list[Decimal]] = {}
    sample: dict[str, KpiValue] = {}
    kpis = catalog.kpis
    for v in values:
        kpi = kpis[v.kpi]
        if kpi.kind == "quantile" or len(kpi.dims) < 1 or len(v.labels) != len(kpi.dims):
            continue
        flow = kpi.kind == "flow"
        if not flow and (v.numerator is None or v.denominator is None):
            continue
        if v.kpi not in sample:
            sample[v.kpi] = v
        numerator = (v.value if flow else v.numerator) or 0
        denominator = v.denominator or 0
        subsets: list[Labels] = [()]
        if len(v.labels) > 1:
            subsets += [(pair,) for pair in v.labels]
        for labels in subsets:
            acc = sums.get((v.kpi, labels))
            if acc is None:
                acc = sums[(v.kpi, labels)] = [_ZERO, _ZERO]
            acc[0] += numerator
            if not flow:  # a flow's second sum stays 0: it is never read
                acc[1] += denominator
    out: list[KpiValue] = []
    for (name, labels), (num, den) in sorted(sums.items()):
        kpi = catalog.kpis[name]
        first = sample[name]
        if kpi.kind == "flow":
            out.append(KpiValue(name, first.window, first.start, first.end, labels, num))
        elif den != 0:
            value = ratio(num, den, kpi.scale)
            window, start, end = first.window, first.start, first.end
            out.append(KpiValue(name, window, start, end, labels, value, num, den))
    return out


def kpi_sources(catalog: CompiledCatalog) -> dict[str, frozenset[str]]:
    """Event types each KPI depends on (formulas: those of their inputs)."""
    by_measure: dict[str, set[str]] = {}
    for event_type, contributions in catalog.by_event.items():
        for c in contributions:
            by_measure.setdefault(c.measure.name, set()).add(event_type)
    for name, starts in catalog.join_starts.items():
        for measure in starts:
            by_measure.setdefault(measure.name, set()).add(name)
    sources: dict[str, frozenset[str]] = {}
    for kpi in catalog.kpis.values():
        if kpi.kind != "formula":
            names = [*kpi.numerator, *(kpi.denominator or {})]
            sources[kpi.name] = frozenset(e for n in names for e in by_measure.get(n, ()))
    for name in catalog.formula_order:
        kpi = catalog.kpis[name]
        sources[name] = frozenset(e for ref in kpi.numerator for e in sources.get(ref, ()))
    return sources


def kpi_causes(catalog: CompiledCatalog) -> dict[str, frozenset[str]]:
    """Event types each KPI depends on, with those they follow in the business flow
    (`FOLLOWS`): what links two alerts into one incident."""

    def upstream(event_type: str) -> set[str]:
        found, todo = {event_type}, [event_type]
        while todo:
            for before in FOLLOWS.get(todo.pop(), ()):
                if before not in found:
                    found.add(before)
                    todo.append(before)
        return found

    return {
        kpi: frozenset(e for s in sources for e in upstream(s))
        for kpi, sources in kpi_sources(catalog).items()
    }


def _incident_text(
    key: SeriesKey,
    member: Membership,
    memberships: dict[SeriesKey, Membership],
    moved: dict[SeriesKey, SeriesKey],
) -> str:
    """What an opened alert's explanation adds about its incident."""
    if member.role == "related":
        return f"; related to incident {series_name(member.root)}"
    if key in moved:
        return f"; takes over the page of incident {member.incident} from {series_name(moved[key])}"
    others = sum(1 for m in memberships.values() if m.incident == member.incident)
    return f" ({others - 1} related alerts opened with it)" if others > 1 else ""


@dataclass
class AnomalyWatch:
    catalog: CompiledCatalog
    policy: AlertPolicy = field(default_factory=AlertPolicy)
    completeness: Completeness = field(default_factory=Completeness)
    detector: Callable[[float], Detector] = SeriesDetector
    windows: frozenset[str] | None = None
    """Windows watched (None: all)."""
    since: float | None = None
    """Window instances starting before this (epoch seconds) are not watched (None: all)."""
    series: dict[SeriesKey, Series] = field(default_factory=dict)
    stale_severity: Severity = "warning"
    max_series: int | None = None
    """Series watched at most (None: all); new ones past it are refused, fewest labels first."""
    idle_steps: int | None = None
    """Forget a series idle for this many steps (None: never; live, `IDLE_STEPS`)."""
    refused: int = 0
    """Values of closed windows left unscored because `max_series` series were watched."""

    def __post_init__(self) -> None:
        self._causes = kpi_causes(self.catalog)
        self.incidents = Incidents(self._causes)
        self._flows: dict[str, dict[tuple[str, Labels], Series]] = {}
        self._open: set[SeriesKey] = set()
        """Series whose alert is open (checked for `NO_DATA_STEPS`)."""
        """Flow series per window: the ones a quiet window instance fills with 0."""
        self._sources = kpi_sources(self.catalog)
        measures = self.catalog.measures
        self._counted = frozenset(
            k.name
            for k in self.catalog.kpis.values()
            if k.denominator and all(measures[m].kind == "count" for m in k.denominator)
        )
        self._inputs = {
            k.name: input_kpis(k, self.catalog.kpis) for k in self.catalog.kpis.values()
        }

    def observe_event(self, source: str, event_time: float) -> None:
        self.completeness.observe(source, event_time)

    def check_sources(self, clock: float) -> list[AnomalyEvent]:
        """`data_stale` transitions as of `clock` (event time, or wall-clock when live)."""
        return [
            AnomalyEvent(
                "data_stale",
                c.state,
                self.stale_severity,
                started_at=c.since,
                at=clock,
                source=c.source,
                observed=c.last_event,
            )
            for c in self.completeness.check(clock)
        ]

    def observe_values(
        self, values: Iterable[KpiValue], clock: float, now: float | None = None
    ) -> list[AnomalyEvent]:
        """Feed the values of closed window instances; return the alert transitions.

        `now` (wall-clock, live only): instances that ended more than `HORIZON_STEPS` steps
        before it are skipped. Catching up on a month of history then costs the detectors what
        warming up needs, not one update per minute of the month.
        """
        events = self.check_sources(clock)
        groups: dict[tuple[str, int], list[KpiValue]] = {}
        for v in values:
            if self.windows is not None and v.window not in self.windows:
                continue
            if now is not None and v.end < now - HORIZON_STEPS * STEPS.get(v.window, 86_400.0):
                continue
            if self.since is not None and v.start < self.since:
                continue
            groups.setdefault((v.window, v.start), []).append(v)
        newest: dict[str, int] = {}
        for (window, start), group in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0])):
            events += self._instance(window, start, group)
            newest[window] = start
        if self.idle_steps is not None:
            for window, start in newest.items():
                self._prune(window, start - self.idle_steps * STEPS.get(window, 86_400.0))
        return events

    def _pool(
        self, window: str, start: int, step: float, values: list[KpiValue]
    ) -> tuple[dict[tuple[str, Labels], Decimal], dict[SeriesKey, float]]:
        """Pool the samples of counted ratios (`POOL_STEPS`): returns the pooled values judged at
        this instance (every event since the series' last judged point, once they are at least
        `MIN_SUPPORT`; the pooled sample is its weight) and, per series whose events are pooled
        here, the start of its oldest pooled instance. A CSAT answered a few times an hour is
        judged every few hours on what was answered since, instead of never."""
        pooled: dict[tuple[str, Labels], Decimal] = {}
        since: dict[SeriesKey, float] = {}
        if window in STATIC_WINDOWS:
            return pooled, since
        for v in values:
            if v.numerator is None or v.denominator is None or v.denominator <= 0:
                continue
            key = (v.kpi, window, v.labels)
            s = self.series.get(key)
            if s is None:
                if v.denominator >= MIN_SUPPORT:
                    continue  # judged on its own: nothing pooled before it
                if self.max_series is not None and len(self.series) >= self.max_series:
                    continue
                s = self.series[key] = Series(self.detector(step), Lifecycle(self.policy))
            if start <= max(s.last_start, s.pooled_at):
                continue  # already seen (the final record of a window scored at its close)
            if s.pool_since < start - POOL_STEPS * step:  # too old to judge with this one
                s.clear_pool()
            if v.denominator >= MIN_SUPPORT and s.pool_denominator == 0:
                continue
            s.pool_numerator += v.numerator
            s.pool_denominator += v.denominator
            s.pool_since, s.pooled_at = min(s.pool_since, float(start)), float(start)
            s.last_seen = max(s.last_seen, start)
            since[key] = s.pool_since
            if s.pool_denominator >= MIN_SUPPORT:
                scale = self.catalog.kpis[v.kpi].scale
                pooled[(v.kpi, v.labels)] = ratio(s.pool_numerator, s.pool_denominator, scale)
        return pooled, since

    def _prune(self, window: str, before: float) -> None:
        """Forget the series of `window` without a value of their own since `before`."""
        idle = [
            key
            for key, s in self.series.items()
            if key[1] == window and s.last_seen < before and not s.lifecycle.active
        ]
        for key in idle:
            self._forget(key)

    def _forget(self, key: SeriesKey) -> None:
        del self.series[key]
        self._flows.get(key[1], {}).pop((key[0], key[2]), None)

    def _instance(self, window: str, start: int, values: list[KpiValue]) -> list[AnomalyEvent]:
        """One closed window instance: update every series, then decide alerts."""
        end = values[0].end
        values = values + rollups(self.catalog, values)
        counted = self._counted
        step = STEPS.get(window, 86_400.0)
        raw = {(v.kpi, v.labels): v.value for v in values if v.value is not None}
        pooled, since = self._pool(window, start, step, [v for v in values if v.kpi in counted])
        raw.update(pooled)
        observed = {
            (v.kpi, v.labels): float(known)
            for v in values
            if (known := raw.get((v.kpi, v.labels))) is not None
            and not (
                v.kpi in counted
                and v.denominator is not None
                and v.denominator < MIN_SUPPORT
                and (v.kpi, v.labels) not in pooled
            )
        }
        weights = {
            (v.kpi, v.labels): float(v.denominator)
            for v in values
            if v.kpi in counted and v.denominator is not None
        }
        for kpi, labels in pooled:
            weights[(kpi, labels)] = float(self.series[(kpi, window, labels)].pool_denominator)
        seen = set(observed)
        self._limit(window, observed)
        for (kpi, labels), s in self._flows.get(window, {}).items():  # a quiet flow series is 0
            if (kpi, labels) not in observed and (
                s.last_start < start <= s.last_start + ZERO_FILL_STEPS * step
            ):
                observed[(kpi, labels)] = 0.0
                raw[(kpi, labels)] = Decimal(0)
        updated: list[tuple[SeriesKey, Series]] = []
        held: dict[str, bool] = {}  # per KPI: its sources' completeness is the same for all
        for (kpi, labels), value in sorted(observed.items()):
            key = (kpi, window, labels)
            found = self.series.get(key)
            if found is None:
                found = self.series[key] = Series(self.detector(step), Lifecycle(self.policy))
                if self.catalog.kpis[kpi].kind == "flow":
                    self._flows.setdefault(window, {})[(kpi, labels)] = found
            s = found
            if (kpi, labels) in seen:
                s.last_seen = max(s.last_seen, start)
            if start <= s.last_start:
                continue  # already seen (the final record of a window scored at its close)
            if key in since:  # judged now on its pool: the next point starts a new one
                s.clear_pool()
            kpi_held = held.get(kpi)
            if kpi_held is None:
                kpi_held = held[kpi] = self._held(kpi, start, end)
            if kpi_held:
                s.last_start = start
                continue
            s.score = s.detector.update(float(start), value, weights.get((kpi, labels)))
            first = min(float(start), since.get(key, float(start)))
            s.contiguous = window in STATIC_WINDOWS or first - s.last_start <= 1.5 * step
            s.observed, s.last_start = value, start
            updated.append((key, s))
        events: list[AnomalyEvent] = self._expire(window, start, end, {k for k, _ in updated})
        changes = self._step(window, start, updated, raw)
        return events + self._decide(window, start, end, changes)

    def _step(
        self,
        window: str,
        start: int,
        updated: list[tuple[SeriesKey, Series]],
        raw: dict[tuple[str, Labels], Decimal],
    ) -> list[tuple[SeriesKey, Series, Transition]]:
        """Step the alert lifecycle of every series updated at this instance."""
        changes: list[tuple[SeriesKey, Series, Transition]] = []
        for key, s in updated:
            kpi, _, labels = key
            assert s.score is not None
            static = (
                static_severity(self.catalog.kpis[kpi].thresholds, raw[(kpi, labels)])
                if window in STATIC_WINDOWS
                else None
            )
            judged = s.score.alerting
            if judged >= self.policy.open_score and not s.lifecycle.active:
                judged = self._combined(key, start, judged)
            change = s.lifecycle.step(
                start,
                judged,
                ready=s.score.ready,
                static=static,
                held=False,
                accepted=s.score.accepted,
                contiguous=s.contiguous,
            )
            if change is not None:
                changes.append((key, s, change))
        return changes

    def _decide(
        self,
        window: str,
        start: int,
        end: float,
        changes: list[tuple[SeriesKey, Series, Transition]],
    ) -> list[AnomalyEvent]:
        """The alert events of one window instance's transitions, grouped into incidents."""
        events: list[AnomalyEvent] = []
        for key, s, change in changes:  # resolutions first: an incident may end here
            if change.state == "resolved":
                explanation = (
                    Explanation(f"{key[0]} new level accepted: it held for {ACCEPT_POINTS} windows")
                    if change.reason == "new level accepted"
                    else None
                )
                events += self._resolved(
                    key, s, change, start=start, end=end, explanation=explanation
                )
        opened = [(key, s, c) for key, s, c in changes if c.state == "opened"]
        memberships = self.incidents.assign(
            [
                Opening(
                    key,
                    s.observed - s.score.expected,
                    s.score.alerting,
                    self.catalog.kpis[key[0]].kind == "flow",
                    STEPS.get(window, 86_400.0),
                    len(self.catalog.kpis[key[0]].numerator) > 1,
                )
                for key, s, _ in opened
                if s.score is not None and window not in STATIC_WINDOWS
            ],
            float(start),
        )
        moved = {new: old for old, new in self.incidents.moved}
        for old in moved.values():  # a better root took the page: the previous one is listed
            previous = self.series.get(old)
            if previous is not None and previous.lifecycle.active:
                previous.role = "related"
        critical = [key for key, _, change in opened if change.severity == "critical"]
        critical += [old for old in moved.values() if self._critical(old)]
        for key in critical:
            member = memberships.get(key) or self.incidents.membership(key)
            if member is not None:  # the root pages with its incident's severity
                root = self.series.get(member.root)
                if root is not None and root.lifecycle.active:
                    root.lifecycle.severity = "critical"
        for key, s, opening in opened:
            self._open.add(key)
            member = memberships.get(key)
            if member is None:  # a business-day threshold window: its own page
                explanation = self.explain_series(key[0], window, key[2], start)
                events.append(
                    self._event(
                        key, s, opening, start=start, end=end, explanation=explanation, member=None
                    )
                )
                continue
            s.incident, s.role = member.incident, member.role
            change = (
                Transition(opening.state, s.lifecycle.severity, opening.started_at)
                if member.role == "root"
                else opening
            )
            explanation = self.explain_series(key[0], window, key[2], start)
            text = _incident_text(key, member, memberships, moved)
            if text:
                text = f"{explanation.text}{text}"
                explanation = Explanation(text, explanation.dimensions, explanation.inputs)
            events.append(
                self._event(
                    key, s, change, start=start, end=end, explanation=explanation, member=member
                )
            )
        return events

    def _critical(self, key: SeriesKey) -> bool:
        s = self.series.get(key)
        return s is not None and s.lifecycle.active and s.lifecycle.severity == "critical"

    def _event(
        self,
        key: SeriesKey,
        s: Series,
        change: Transition,
        *,
        start: float,
        end: float,
        explanation: Explanation | None,
        member: Membership | None,
        values: bool = True,
    ) -> AnomalyEvent:
        """`values` False: the point has no value of its own (resolved for lack of data)."""
        score = s.score if values else None
        return AnomalyEvent(
            "kpi_anomaly",
            change.state,
            change.severity,
            started_at=change.started_at,
            at=float(end),
            kpi=key[0],
            window=key[1],
            dimensions=key[2],
            window_start=float(start),
            window_end=float(end),
            observed=s.observed if values else None,
            expected=score.expected if score is not None else None,
            lower=score.lower if score is not None else None,
            upper=score.upper if score is not None else None,
            score=score.alerting if score is not None else 0.0,
            explanation=explanation,
            incident=member.incident if member is not None else None,
            role=member.role if member is not None else None,
        )

    def _resolved(
        self,
        key: SeriesKey,
        s: Series,
        change: Transition,
        *,
        start: float,
        end: float,
        explanation: Explanation | None,
        values: bool = True,
    ) -> list[AnomalyEvent]:
        """The resolution of `key`'s alert (it leaves its incident)."""
        self._open.discard(key)
        member = self.incidents.membership(key)
        s.incident = s.role = ""
        self.incidents.resolved(key, start)
        return [
            self._event(
                key,
                s,
                change,
                start=start,
                end=end,
                explanation=explanation,
                member=member,
                values=values,
            )
        ]

    def _expire(
        self, window: str, start: int, end: float, updated: set[SeriesKey]
    ) -> list[AnomalyEvent]:
        """Resolve the open alerts of `window` whose series had no value for `NO_DATA_STEPS`
        instances in a row (not while a source they depend on is stale: that is held)."""
        events = []
        for key in [k for k in self._open if k[1] == window]:
            s = self.series.get(key)
            if s is None or not s.lifecycle.active:
                self._open.discard(key)
                continue
            if key in updated or self._held(key[0], start, end):
                s.missed = 0
                continue
            if start <= max(s.last_start, s.last_missed):
                continue  # seen already: a window's final record after its first close
            s.missed, s.last_missed = s.missed + 1, start
            if s.missed < NO_DATA_STEPS:
                continue
            change = s.lifecycle.expire()
            self._open.discard(key)
            s.missed = 0
            if change is not None:
                text = f"{key[0]} has had no value to judge for {NO_DATA_STEPS} windows"
                events += self._resolved(
                    key,
                    s,
                    change,
                    start=start,
                    end=end,
                    explanation=Explanation(text),
                    values=False,
                )
        return events

    def _limit(self, window: str, observed: dict[tuple[str, Labels], float]) -> None:
        """Drop from `observed` the new series past `max_series`: those with the fewest labels
        (totals, then single dimensions) are watched first, as boards and alerts need them most,
        and take the place of watched series with more labels when there is no room."""
        if self.max_series is None:
            return
        new = [k for k in observed if (k[0], window, k[1]) not in self.series]
        room = max(0, self.max_series - len(self.series))
        if len(new) <= room:
            return
        new.sort(key=lambda k: (len(k[1]), k))
        refused = new[room:]
        # A new series with fewer labels takes the place of a watched one with more (not in an
        # alert; the finest and longest quiet first): whatever came first, totals and roll-ups
        # are watched before combinations.
        victims = sorted(
            (
                key
                for key, s in self.series.items()
                if not s.lifecycle.active and (key[1] != window or (key[0], key[2]) not in observed)
            ),
            key=lambda key: (len(key[2]), -self.series[key].last_seen),
        )
        kept = 0
        for key in refused:
            if not victims or len(victims[-1][2]) <= len(key[1]):
                break
            self._forget(victims.pop())
            kept += 1
        for key in refused[kept:]:
            del observed[key]
        self.refused += len(refused) - kept

    def _held(self, kpi: str, start: float, end: float) -> bool:
        return any(
            self.completeness.incomplete(source, start, end) for source in self._sources[kpi]
        )

    def _combined(self, key: SeriesKey, start: int, score: float) -> float:
        """The score an alert may open on, for a KPI whose numerator combines several measures
        or KPIs (the margins, working capital, the cash conversion cycle): below the open score
        when every input is within its band at this instance (scores below the open score; for
        a sparse input such as a minute's OpEx, an expense landing is within its count model's
        band). Normal inputs combined into an unusual ratio are not something on-call can act
        on: an operating margin of one segment at 1m swings whenever an expense lands in the
        minute, and the demo paged for it ("no single input moved out of its band") in most
        hours replayed. Inputs not watched at this scope or without a value here are not
        judged (OpEx is kept per cost center and category: its roll-ups are the total and each
        single dimension); with none judged, the score is left as it is."""
        kpi, window, labels = key
        names = self._inputs.get(kpi, ())
        if not names or len(self.catalog.kpis[kpi].numerator) == 1:
            return score  # one measure over another cancels their volume noise: its own signal
        judged = 0
        for name in names:
            found = self.series.get((name, window, self._project(name, labels)))
            if found is None or found.score is None or found.last_start != start:
                continue  # not watched at this scope (OpEx per business unit and region)
            judged += 1
            if found.score.alerting >= self.policy.open_score:
                return score
        return min(score, CALM_INPUTS_SCORE) if judged else score

    def _point(self, key: SeriesKey, start: int) -> Point | None:
        s = self.series.get(key)
        if s is None or s.score is None or s.last_start != start:
            return None
        return Point(key[2], s.observed, s.score.expected, s.score.z)

    def explain_series(self, kpi: str, window: str, labels: Labels, start: int) -> Explanation:
        """Why `kpi{labels}` at `window` is where it is at the instance starting at `start`: its
        deviation over its own scope's finest series and its inputs (`streams.detection.explain`).
        The series must have been scored at that instance. Used for alerts and the live page."""
        point = self._point((kpi, window, labels), start)
        assert point is not None
        finest = len(self.catalog.kpis[kpi].dims)
        scope = set(labels)
        siblings = [  # inside the alerted series' scope: what it is made of
            p
            for key in self.series
            if key[0] == kpi and key[1] == window and len(key[2]) == finest and scope <= set(key[2])
            for p in [self._point(key, start)]
            if p is not None
        ]
        inputs = {
            name: p
            for name in self._inputs.get(kpi, ())
            for p in [self._point((name, window, self._project(name, labels)), start)]
            if p is not None
        }
        return explain(kpi, point, siblings, inputs, ratio=self.catalog.kpis[kpi].unit == "ratio")

    def _project(self, kpi: str, labels: Labels) -> Labels:
        dims = self.catalog.kpis[kpi].dims
        return tuple((k, v) for k, v in labels if k in dims)

    def active(self) -> list[tuple[SeriesKey, Series]]:
        return [(k, s) for k, s in self.series.items() if s.lifecycle.active]

    def shared_state(self) -> tuple[Incidents, list[SeriesKey], int, Completeness]:
        """What the series share (`streams.detection.state` records it beside each series)."""
        return self.incidents, sorted(self._open), self.refused, self.completeness

    def load_state(
        self,
        series: dict[SeriesKey, Series],
        shared: tuple[Incidents, list[SeriesKey], int, Completeness] | None,
    ) -> None:
        """Take over recorded state (`streams.detection.state.restore`): the series as they
        were, and what they shared when it was recorded (None: no incident, no open alert)."""
        self.reset()
        known = self.catalog.kpis
        self.series.update((key, s) for key, s in series.items() if key[0] in known)
        for (kpi, window, labels), s in self.series.items():
            if self.catalog.kpis[kpi].kind == "flow":
                self._flows.setdefault(window, {})[(kpi, labels)] = s
        if shared is not None:
            incidents, open_keys, self.refused, self.completeness = shared
            incidents.sources = self._causes  # the running catalog's, not the recorded one
            self.incidents = incidents
            self._open = {key for key in open_keys if key in self.series}

    def reset(self) -> None:
        """Forget every series (after a rebalance their values mean other partitions)."""
        self.series.clear()
        self._flows.clear()
        self._open.clear()
        self.incidents.forget()
