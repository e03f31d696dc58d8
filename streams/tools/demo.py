"""`pulse demo`: embedded broker + worker + simulator in one process, with a live summary.

The simulator first publishes a quiet history (32 days at a low rate, so that business days and
a month have closed and balances, DSO/DPO/DIO and budget variance have values), then the last two
minutes (so closed 1-minute windows appear within seconds), then events in real time. The
detectors watch the live stream only (they warm up in about three hours).

With `incidents`, the history is instead the last four hours at the live rate (enough for the
minute-level detectors to learn), with a labelled revenue dip in EMEA that ended half an hour ago
(so `pulse.anomalies` shows it opened and resolved within seconds of starting), followed by live
incidents a few minutes in: a dip, a silent source and a spike. Their ground truth is written as
CSV. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from streams.core import WorkerState
from streams.detection.watch import AnomalyWatch
from streams.kafka.clients import TopicSpec, ensure_topics
from streams.kafka.connection import KafkaTarget
from streams.kafka.embedded import kafka_bootstrap, port_is_free
from streams.settings import Settings
from streams.tools.incidents import Incident, write_ground_truth
from streams.tools.publisher import PublishStats, publish
from streams.tools.simulator import SimulationConfig, simulate
from streams.worker.worker import Worker

DEMO_SOURCE_IDLE_SECONDS = 10.0
"""PULSE_SOURCE_IDLE_SECONDS in the demo, unless set: live windows close within seconds."""
BACKFILL = timedelta(minutes=2)
FOREVER_S = 10 * 365 * 86400.0
INPUT_PARTITIONS = 3
SHUTDOWN_TIMEOUT_S = 15.0


HISTORY_RATE = 0.02
"""Events per second of the history: ~1,700 a day, enough for every daily and monthly KPI, and
few enough (55k for 32 days) that the worker has caught up on it within ~10 s of starting."""
INCIDENT_BACKFILL = timedelta(hours=4)
"""With incidents: history at the live rate, longer than the minute detectors' warm-up (3.2 h)."""


@dataclass(frozen=True)
class DemoOptions:
    duration: float | None = None
    history_days: int = 32
    metrics_port: int | None = None
    """None: the configured port (9464 by default), or any free one if that is taken."""
    rate: float = 50.0
    seed: int = 42
    bad_ratio: float = 0.02
    summary_every: float = 5.0
    incidents: bool = False
    ground_truth: Path = Path("ground-truth.csv")


def demo_incidents(live: float) -> tuple[Incident, ...]:
    """The labelled incidents of the demo, around `live` (epoch seconds, whole)."""
    minute = 60
    return (
        Incident(
            "dip", "revenue", live - 40 * minute, live - 28 * minute, 0.7, (("region", "emea"),)
        ),
        Incident(
            "dip",
            "revenue",
            live + 3 * minute,
            live + 9 * minute,
            0.7,
            (("business_unit", "retail"),),
        ),
        Incident("silent_source", "shipment_delivered", live + 14 * minute, live + 22 * minute),
        Incident(
            "spike", "cogs", live + 27 * minute, live + 33 * minute, 2.0, (("region", "amer"),)
        ),
    )


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run_demo(
    settings: Settings, options: DemoOptions, say: Callable[[str], None] = _say
) -> bool:
    """Run until `options.duration` elapses or SIGINT/SIGTERM; raises on a fatal worker error.
    True when a SIGINT (Ctrl-C) stopped it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(sig: int) -> None:
        received.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        with kafka_bootstrap(settings) as bootstrap:
            where = "embedded broker" if not settings.kafka_bootstrap else "Kafka"
            say(f"kpi-pulse demo: {where} at {bootstrap}")
            configured = settings.model_copy(update={"kafka_bootstrap": str(bootstrap)})
            await _run(configured, bootstrap, options, stop, say)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    say("stopped cleanly")
    return received[:1] == [signal.SIGINT]


async def _run(
    settings: Settings,
    bootstrap: KafkaTarget,
    options: DemoOptions,
    stop: asyncio.Event,
    say: Callable[[str], None],
) -> None:
    if "source_idle_seconds" not in settings.model_fields_set:
        # One simulated company publishes every source: a source silent for ten seconds is
        # idle and forgotten (rare but timely publishers such as `pmo` hold windows only by
        # their small arrival lag either way).
        settings = settings.model_copy(update={"source_idle_seconds": DEMO_SOURCE_IDLE_SECONDS})
    if options.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": options.metrics_port})
    elif not port_is_free(settings.metrics_host, settings.metrics_port):
        say(f"port {settings.metrics_port} is taken; serving /metrics on a free port instead")
        settings = settings.model_copy(update={"metrics_port": 0})
    topic = settings.input_topics[0]
    await ensure_topics(bootstrap, [TopicSpec(topic, INPUT_PARTITIONS)])
    worker = Worker(settings, bootstrap)
    started = datetime.now(UTC)
    now = started.replace(second=0, microsecond=0)  # incidents on whole minutes
    backfill = INCIDENT_BACKFILL if options.incidents else BACKFILL
    history_days = 0 if options.incidents else options.history_days
    live_from = now - backfill
    if worker.watch is not None and history_days:
        # The quiet history is there for daily and monthly KPIs; at a thousandth of the live
        # rate it would teach the detectors a level the live stream then "breaks" everywhere.
        worker.watch.since = live_from.timestamp()
    worker_task = asyncio.create_task(worker.run(stop), name="worker")
    incidents = demo_incidents(now.timestamp()) if options.incidents else ()
    if incidents:
        with options.ground_truth.open("w", newline="") as out:
            write_ground_truth(incidents, out)
        say(f"{len(incidents)} labelled incidents; ground truth in {options.ground_truth}")
    history = SimulationConfig(
        start=live_from - timedelta(days=history_days),
        seed=options.seed + 1,  # its own ids: history and live stream never collide
        rate=HISTORY_RATE,
        bad_ratio=options.bad_ratio,
        duration=history_days * 86400.0,
        max_event_bytes=settings.max_event_bytes,
    )
    live = SimulationConfig(
        start=live_from,
        seed=options.seed,
        rate=options.rate,
        bad_ratio=options.bad_ratio,
        # until `duration` after the real start (`now` is rounded down to the minute)
        duration=(started - live_from).total_seconds() + (options.duration or FOREVER_S),
        max_event_bytes=settings.max_event_bytes,
        incidents=incidents,
    )
    if history_days:
        say(f"publishing {history_days} days of history first, then live events")
    elif incidents:
        say(f"publishing the last {backfill} at the live rate first, then live events")
    messages = itertools.chain(simulate(history) if history_days else (), simulate(live))
    stats = PublishStats()
    publisher_task = asyncio.create_task(
        publish(bootstrap, topic, messages, stop, stats=stats), name="simulator"
    )
    tasks = (worker_task, publisher_task)
    try:
        serving = asyncio.create_task(worker.serving.wait())
        await asyncio.wait([serving, *tasks], return_when=asyncio.FIRST_COMPLETED)
        serving.cancel()
        if worker.serving.is_set():
            say(f"page: {worker.server.page_url}   (live KPIs, band and open alerts)")
            say(f"metrics: {worker.server.url}   (Ctrl-C to stop)")
            await _watch(worker, tasks, stats, stop, options=options, say=say)
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT_S)
        for task in pending:
            say(f"{task.get_name()} did not stop within {SHUTDOWN_TIMEOUT_S:.0f}s; cancelling it")
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def _watch(
    worker: Worker,
    tasks: tuple[asyncio.Task[None], asyncio.Task[PublishStats]],
    stats: PublishStats,
    stop: asyncio.Event,
    *,
    options: DemoOptions,
    say: Callable[[str], None],
) -> None:
    """Print a summary every few seconds until stopped, the duration ends, or a task fails."""
    started = last_time = time.monotonic()
    deadline = started + options.duration if options.duration else None
    last_consumed = 0
    while not stop.is_set():
        timeout = options.summary_every
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
        if any(t.done() and (t is tasks[0] or t.exception()) for t in tasks):
            return  # the caller re-raises the failure
        now = time.monotonic()
        rate = (worker.consumed - last_consumed) / max(now - last_time, 1e-9)
        last_consumed, last_time = worker.consumed, now
        lag = sum(behind for *_, behind in worker.lag())
        say(summary_line(now - started, rate, stats, worker.state, lag, watch=worker.watch))
        if deadline is not None and now >= deadline:
            return


def summary_line(
    elapsed: float,
    rate: float,
    stats: PublishStats,
    state: WorkerState,
    lag: int,
    *,
    watch: AnomalyWatch | None = None,
) -> str:
    """One line for a person watching the demo."""
    rejected = sum(state.rejected.values())
    reasons = ", ".join(f"{r} {n}" for r, n in state.rejected.most_common(3))
    line = (
        f"[{elapsed:5.0f}s] {rate:7.1f} events/s | published {stats.sent} | "
        f"counted {sum(state.processed.values())} | rejected {rejected}"
        + (f" ({reasons})" if reasons else "")
        + f" | lag {lag}"
    )
    revenue = [v for v in state.latest_values() if v.kpi == "revenue" and v.window == "1m"]
    if revenue:
        start = datetime.fromtimestamp(revenue[0].start, UTC).strftime("%H:%M")
        end = datetime.fromtimestamp(revenue[0].end, UTC).strftime("%H:%M")
        total = sum(v.value or 0 for v in revenue)  # a flow always has a value
        line += (
            f" | revenue {start}-{end} UTC: {total:,.2f} {state.config.fx.reporting_currency}"
            f" over {len(revenue)} series"
        )
    if watch is not None:
        stale = sorted(watch.completeness.stale())
        line += f" | anomalies open {len(watch.active())}" + (
            f" | stale: {', '.join(stale)}" if stale else ""
        )
    return line
