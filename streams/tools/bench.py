"""`pulse bench`: pipeline throughput as a ratio to a plain-consumer ceiling, in one run.

The same events are produced once. Then, alternately for a few rounds:
- the *ceiling*: a plain aiokafka consumer reading every partition, decoding with orjson and
  validating with the same pydantic models, and doing nothing else;
- the *pipeline*: one `Worker` (fresh consumer group and changelog) from the same topic to final
  KPI state, dead letters and changelog records acknowledged. Timed from partition assignment
  (group join is a startup cost, not throughput) until every message has been processed;
- the same pipeline with anomaly detection off (`PULSE_DETECTION=false`): the detection cost is
  `1 - with / without`; and, with detection on, the time detection took per closed-window value
  it was fed (a KPI series' value of a closed window instance: detectors, roll-ups, lifecycle,
  incidents, explanations), from the worker's own detection clock.
The ratio of medians is what to compare across machines; absolute figures vary with the machine.
Each path's CPU time per event (this process's `time.process_time`: the worker runs in it, the
broker does not) is printed too, with its ratio: on a machine shared with other jobs it moves far
less than wall-clock throughput, which waits for a core whenever the others take them.
With `latency`, a paced run follows (`streams.tools.bench_latency`): start → ready, publish →
applied and window end → KPI record at that offered rate, and RSS.
Detection works once per closed window, not per event, so its cost depends on how much event time
the events span: `simulated_rate` (events per simulated second) sets that density.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import TopicPartition
from pydantic import ValidationError

from schemas import event_adapter
from streams.core import CATALOG, Catalog
from streams.kafka.clients import (
    TopicSpec,
    ensure_topics,
    new_consumer,
    quiet_kafka_logs,
    start_client,
)
from streams.kafka.connection import KafkaTarget
from streams.kafka.embedded import kafka_bootstrap
from streams.settings import Settings
from streams.tools.bench_catalog import bench_catalog
from streams.tools.bench_common import isolated
from streams.tools.bench_latency import measure_latency, table
from streams.tools.publisher import publish
from streams.tools.simulator import SimulatedMessage, SimulationConfig, simulate
from streams.worker.worker import Worker

SIMULATED_RATE = 50.0
"""Events per simulated second, as the demo's live stream: 200k events span about an hour."""
BAD_RATIO = 0.01


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run_bench(
    settings: Settings,
    events: int,
    partitions: int,
    rounds: int,
    *,
    with_faust: bool = False,
    simulated_rate: float = SIMULATED_RATE,
    latency: float | None = None,
    latency_seconds: float = 90.0,
    catalog: str = "full",
    say: Callable[[str], None] = say,
) -> float:
    """Run the benchmark and return the ratio (median pipeline / median ceiling). `catalog`:
    the pipeline's KPI catalog, "full" or a smaller one cut from it (`bench_catalog`)."""
    kpis = bench_catalog(catalog)
    quiet_kafka_logs()
    # Keep the figures readable: once a round has caught up, the (past) stream looks silent and
    # every source is rightly reported stale.
    logging.getLogger("streams").setLevel(logging.ERROR)
    with kafka_bootstrap(settings) as bootstrap:
        run_id = uuid.uuid4().hex[:8]
        topic = f"bench-{run_id}.events"
        await ensure_topics(bootstrap, [TopicSpec(topic, partitions)])
        messages = bench_messages(settings, events, simulated_rate)
        broker = "Kafka" if settings.kafka_bootstrap else "embedded broker"
        say(
            f"bench: {events} events ({BAD_RATIO:.0%} bad) on {partitions} partitions, "
            f"{broker} at {bootstrap}, {catalog} catalog"
        )
        started = time.perf_counter()
        await publish(bootstrap, topic, messages, paced=False)
        say(f"produce:  {events / (time.perf_counter() - started):10,.0f} events/s")
        del messages

        ceilings, pipelines, plains, costs = [], [], [], []
        ceiling_cpu, pipeline_cpu = [], []
        on = settings.model_copy(update={"detection": True})
        off = settings.model_copy(update={"detection": False})
        for round_no in range(1, rounds + 1):
            ceiling, cpu = await measure_ceiling(bootstrap, topic, partitions, events)
            ceiling_cpu.append(1e6 * cpu / events)
            pipeline, cost = await measure_pipeline(
                on, bootstrap, topic, events, run_id=run_id, round_no=round_no, catalog=kpis
            )
            pipeline_cpu.append(1e6 * cost[2] / events)
            plain, *_ = await measure_pipeline(
                off, bootstrap, topic, events, run_id=run_id, round_no=-round_no, catalog=kpis
            )
            costs.append(cost[:2])
            ceilings.append(ceiling)
            pipelines.append(pipeline)
            plains.append(plain)
            say(
                f"round {round_no}: ceiling {ceiling:10,.0f} events/s | pipeline "
                f"{pipeline:10,.0f} events/s | ratio {pipeline / ceiling:.2f} | without "
                f"detection {plain:10,.0f} events/s"
            )
        ceiling, pipeline = statistics.median(ceilings), statistics.median(pipelines)
        plain = statistics.median(plains)
        say(f"ceiling:  {ceiling:10,.0f} events/s (plain aiokafka + orjson + pydantic, median)")
        say(f"pipeline: {pipeline:10,.0f} events/s (one worker to final KPI state, median)")
        say(
            f"without detection: {plain:10,.0f} events/s; detection costs "
            f"{max(0.0, 1 - pipeline / plain):.0%} of pipeline throughput"
        )
        say(cpu_line(ceiling_cpu, pipeline_cpu))
        seconds, values = sum(c[0] for c in costs), sum(c[1] for c in costs)
        say(
            f"detection per closed window: {1e6 * seconds / max(values, 1):.1f} us per KPI "
            f"value fed ({values // max(len(costs), 1)} values per round, "
            f"{seconds / max(len(costs), 1):.2f} s of detection per round)"
        )
        if with_faust:
            from streams.tools.faust_baseline import measure_faust_agent  # noqa: PLC0415

            faust_rate = await measure_faust_agent(
                settings, str(bootstrap), topic, partitions, events
            )
            say(
                f"faust:    {faust_rate:10,.0f} events/s (a Faust agent doing the same per-event "
                f"work, no table writes; ratio {faust_rate / ceiling:.2f})"
            )
        if latency is not None:
            felt = await measure_latency(settings, bootstrap, latency, latency_seconds)
            for line in table(felt, settings):
                say(line)
        ratio = pipeline / ceiling
        say(f"ratio: {ratio:.2f}")
        return ratio


def bench_messages(
    settings: Settings, events: int, simulated_rate: float = SIMULATED_RATE
) -> list[SimulatedMessage]:
    """The bench's `events` messages: a seasonal Poisson stream, `BAD_RATIO` of it bad, all of
    it in the past (four times the span is asked for, as night runs at ~0.35x the rate, and the
    first `events` kept)."""
    span = timedelta(seconds=events / simulated_rate)
    config = SimulationConfig(
        start=datetime.now(UTC) - 4 * span,
        rate=simulated_rate,
        duration=4 * span.total_seconds(),
        bad_ratio=BAD_RATIO,
        max_event_bytes=settings.max_event_bytes,
    )
    messages = [m for _, m in zip(range(events), simulate(config), strict=False)]
    if len(messages) < events:
        raise RuntimeError(f"simulator gave only {len(messages)} of {events} events")
    return messages


def cpu_line(ceiling: list[float], pipeline: list[float]) -> str:
    """The `cpu:` line: each path's CPU µs per event (medians of rounds) and their ratio."""
    per_ceiling, per_pipeline = statistics.median(ceiling), statistics.median(pipeline)
    return (
        f"cpu: ceiling {per_ceiling:.1f} us/event, pipeline {per_pipeline:.1f} us/event "
        f"(this process, medians), ratio {per_ceiling / max(per_pipeline, 1e-9):.2f}"
    )


async def measure_ceiling(
    bootstrap: KafkaTarget, topic: str, partitions: int, events: int
) -> tuple[float, float]:
    """Events/s of a consumer that reads, decodes and validates, and nothing else, and the CPU
    seconds this process spent meanwhile."""
    consumer = new_consumer(bootstrap, group_id=None)
    await start_client(consumer, bootstrap)
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        seen = 0
        started, cpu = time.perf_counter(), time.process_time()
        while seen < events:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    # The bad share costs the ceiling what it costs the pipeline.
                    with contextlib.suppress(orjson.JSONDecodeError, ValidationError):
                        event_adapter.validate_python(orjson.loads(record.value))
                seen += len(records)
        return events / (time.perf_counter() - started), time.process_time() - cpu
    finally:
        await consumer.stop()


async def measure_pipeline(
    settings: Settings,
    bootstrap: KafkaTarget,
    topic: str,
    events: int,
    *,
    run_id: str,
    round_no: int,
    catalog: Catalog = CATALOG,
) -> tuple[float, tuple[float, int, float]]:
    """Events/s of one worker (on `catalog`) from assignment until every message is processed
    and acked, and (seconds spent detecting, closed-window values fed to detection, CPU seconds
    of this process) in that time."""
    worker_settings = isolated(settings, bootstrap, topic, f"bench-{run_id}-{round_no}")
    worker = Worker(worker_settings, bootstrap, catalog)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await _first(worker.assigned.wait(), task)
        started, cpu = time.perf_counter(), time.process_time()
        while worker.consumed < events:
            if task.done():
                task.result()
                raise RuntimeError("worker stopped before the bench finished")
            await asyncio.sleep(0.005)
        rate = events / (time.perf_counter() - started)
        used = time.process_time() - cpu
        return rate, (worker.detector_cost(), worker.detector_values(), used)
    finally:
        stop.set()
        await task


async def _first(waiting: Coroutine[Any, Any, object], task: asyncio.Task[None]) -> None:
    waiter = asyncio.ensure_future(waiting)
    await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()
        raise RuntimeError("worker stopped before partitions were assigned")
