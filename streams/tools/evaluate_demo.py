"""`pulse evaluate --demo`: the demo's own stream, judged as on-call would receive it.

`pulse demo --incidents` publishes the last four hours at the live rate (50 events/s) with a
labelled revenue dip in EMEA that ended half an hour before the start, then live incidents: a
retail revenue dip, a silent source and a COGS spike in AMER (`streams.tools.demo`). This replays
that stream offline (the same simulator configuration, seed and incidents, from a start time you
choose: detection depends on the hour of the day) through the same core and `AnomalyWatch` as the
worker, every window size watched, and reports what on-call would have received: each
incident's pages (the root, and how many related alerts it listed), when it resolved, and every
page that matches no incident. With `incidents=False` it is the normal demo stream, warm: every
page is a false one.

Scored as `pulse evaluate` scores (`streams.tools.evaluate.score`) at a one-minute step: pages,
precision, recall and the on-call score.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO
from zoneinfo import ZoneInfo

from streams.core import Finalizer, Watermark, compile_catalog
from streams.core.money import FxTable
from streams.core.partition_state import PartitionState, Windows
from streams.detection.completeness import Completeness
from streams.detection.incidents import series_name
from streams.detection.watch import AnomalyEvent, AnomalyWatch
from streams.settings import Settings
from streams.tools.demo import DEMO_SOURCE_IDLE_SECONDS, INCIDENT_BACKFILL, demo_incidents
from streams.tools.evaluate import (
    DetectorReport,
    affected_kpis,
    alerting_points,
    matches,
    replay,
    score,
)
from streams.tools.incidents import Incident
from streams.tools.simulator import SimulationConfig, simulate

MINUTE = 60.0
LIVE_FLUSH_SECONDS = 10.0
"""Windows are closed and judged every 10 s of event time, as live (a worker does it every
batch), where `pulse evaluate` feeds every `evaluate.FLUSH_SECONDS` of its weeks."""


@dataclass(frozen=True)
class DemoRun:
    start: datetime
    """When the demo starts (rounded down to the minute, as the demo does)."""
    minutes: float = 40.0
    """How long the live part runs (the demo's last planned incident ends 33 minutes in)."""
    incidents: bool = True
    seed: int = 42
    rate: float = 50.0

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ValueError(f"--minutes must be positive, not {self.minutes:g}")
        if self.rate <= 0:
            raise ValueError(f"--rate must be positive, not {self.rate:g}")


@dataclass(frozen=True)
class DemoEvaluation:
    spec: DemoRun
    live: float
    incidents: tuple[Incident, ...]
    report: DetectorReport
    alerts: list[AnomalyEvent]
    events: int
    seconds: float


def run_demo(spec: DemoRun, progress: TextIO | None = None) -> DemoEvaluation:
    """Replay the demo's stream through the core and the watch; score the pages."""
    started = time.perf_counter()
    settings = Settings()
    catalog = compile_catalog()
    live = spec.start.astimezone(UTC).replace(second=0, microsecond=0)
    incidents = demo_incidents(live.timestamp()) if spec.incidents else ()
    live_from = live - INCIDENT_BACKFILL
    end = live + timedelta(minutes=spec.minutes)
    config = SimulationConfig(
        start=live_from,
        seed=spec.seed,
        rate=spec.rate,
        bad_ratio=0.0,
        duration=(end - live_from).total_seconds(),
        incidents=incidents,
    )
    windows = Windows.for_timezone(ZoneInfo(settings.business_timezone))
    state = PartitionState(
        catalog,
        windows,
        watermark=Watermark(settings.watermark_delay_seconds, 0.0, idle=DEMO_SOURCE_IDLE_SECONDS),
        fx=FxTable(settings.reporting_currency, settings.fx_rates),
        dedupe_max_entries=settings.dedupe_max_entries,
        retained_windows=settings.retained_windows,
    )
    closing = Finalizer(catalog, windows, 0.0)
    watch = AnomalyWatch(
        catalog,
        completeness=Completeness(min_silence=settings.stale_after_seconds),
        max_series=settings.max_watched_series,
    )
    limits = settings.validation_limits
    next_report = live_from.timestamp() + 1800.0

    def progress_line(at: float, count: int) -> None:
        nonlocal next_report
        if progress is not None and at >= next_report:
            clock = datetime.fromtimestamp(at, UTC)
            progress.write(f"evaluate: demo stream at {clock:%H:%M} UTC, {count} events\n")
            next_report += 1800.0

    mark = end.timestamp()
    (alerts,), count = replay(
        simulate(config),
        state,
        closing,
        [watch],
        limits=limits,
        span=(live_from.timestamp(), mark),
        now=mark + 3600.0,
        flush_seconds=LIVE_FLUSH_SECONDS,
        report=progress_line,
    )
    report = score("kpi-pulse", alerts, incidents, catalog, MINUTE, until=mark)
    return DemoEvaluation(
        spec,
        live.timestamp(),
        incidents,
        report,
        alerts,
        count,
        time.perf_counter() - started,
    )


def _hm(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


def _pages(alerts: Sequence[AnomalyEvent]) -> list[AnomalyEvent]:
    """The opened alerts that paged: roots, once per incident (a page that moved is one)."""
    paged: set[str] = set()
    pages = []
    for a in alerts:
        if a.state != "opened" or a.role == "related":
            continue
        if a.incident is not None:
            if a.incident in paged:
                continue
            paged.add(a.incident)
        pages.append(a)
    return pages


def _what(a: AnomalyEvent) -> str:
    if a.alert == "data_stale":
        return f"data_stale {a.source}"
    return series_name((a.kpi or "", a.window or "", a.dimensions))


def _resolved(page: AnomalyEvent, alerts: Sequence[AnomalyEvent]) -> float | None:
    """When the page's incident (or the page itself, without one) resolved its last alert."""
    if page.incident is None:
        same = (page.alert, page.kpi, page.window, page.dimensions, page.source)
        return next(
            (
                a.at
                for a in alerts
                if a.state == "resolved"
                and a.at >= page.at
                and (a.alert, a.kpi, a.window, a.dimensions, a.source) == same
            ),
            None,
        )
    members = [a for a in alerts if a.incident == page.incident]
    opened = sum(a.state == "opened" for a in members)
    resolved = [a.at for a in members if a.state == "resolved"]
    return max(resolved) if len(resolved) >= opened else None


def demo_report(evaluation: DemoEvaluation, out: TextIO) -> None:
    spec = evaluation.spec
    alerts = evaluation.alerts
    catalog = compile_catalog()
    out.write(
        f"evaluate --demo: the demo's stream from {_hm(evaluation.live)} UTC "
        f"({INCIDENT_BACKFILL.total_seconds() / 3600:g} h before it, {spec.minutes:g} min "
        f"after; {spec.rate:g} events/s, seed {spec.seed}), "
        f"{len(evaluation.incidents)} planned incidents, {evaluation.events} events in "
        f"{evaluation.seconds:.0f} s\n"
    )
    pages = _pages(alerts)
    matched: set[int] = set()
    for incident in evaluation.incidents:
        affected = (
            frozenset()
            if incident.kind == "silent_source"
            else affected_kpis(catalog, incident.target)
        )
        mine = []
        for i, page in enumerate(pages):
            group = [a for a in alerts if a.state == "opened" and a.incident == page.incident]
            if any(matches(a, incident, affected, MINUTE) for a in group or [page]):
                mine.append(page)
                matched.add(i)
        head = (
            f"incident {_hm(incident.start)}-{_hm(incident.end)} {incident.kind} "
            f"{incident.series}: "
        )
        if not mine:
            out.write(head + "missed\n")
            continue
        for page in mine:
            related = sum(
                1
                for a in alerts
                if a.state == "opened" and a.role == "related" and a.incident == page.incident
            )
            ended = _resolved(page, alerts)
            out.write(
                head
                + f"paged at {_hm(page.started_at)} as {_what(page)} ({page.severity}"
                + (f", {related} related alerts listed" if related else "")
                + f"), resolved {_hm(ended) if ended is not None else 'not yet'}\n"
            )
    for i, page in enumerate(pages):
        if i not in matched:
            points = alerting_points(page, alerts, MINUTE, evaluation.live + spec.minutes * 60)
            out.write(
                f"false page at {_hm(page.started_at)}: {_what(page)} ({page.severity}, "
                f"score {page.score:.2f}), open {points} points\n"
            )
    r = evaluation.report
    if not evaluation.incidents:
        out.write(f"pages {len(pages)}: no incident was planned, every page is a false one\n")
        return
    out.write(
        f"pages {len(pages)}: precision {r.precision:.2f}  recall {r.recall:.2f}  "
        f"on-call score {r.oncall:.1f} ({r.related} related alerts did not page)\n"
    )
