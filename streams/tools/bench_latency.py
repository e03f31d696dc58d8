"""`pulse bench --latency RATE`: what a user feels, at a fixed offered rate, event time = now.

One worker (fresh topic, group and prefix) in this process:
- start → ready: from `Worker.run` until its readiness probe passes (an empty input topic, so
  this is group join, recovery and topic checks);
- publish → applied: each event's send time to the moment the worker has consumed it. One input
  partition, so the worker consumes in publish order and the n-th event is applied once the
  worker's consumed count passes n (sampled every 2 ms). The events are made and sent by a
  child process, as by a publisher of their own: made and sent on the worker's event loop, the
  simulator and the producer (~50 us an event) took more of it than the worker did;
- window end → KPI record: for every `1m` record on `<prefix>.kpi`, the time a consumer receives
  it minus the window's end. The watermark delay (`PULSE_WATERMARK_DELAY_SECONDS`) is in it by
  design; what processing adds is the excess;
- RSS of this process (it hosts the worker) at the end.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from streams.kafka.clients import (
    TopicSpec,
    ensure_topics,
    new_consumer,
    new_producer,
    start_client,
)
from streams.kafka.connection import KafkaTarget
from streams.settings import Settings
from streams.tools.bench_common import isolated
from streams.tools.simulator import SimulationConfig, daily_level, simulate
from streams.worker.worker import Worker

SAMPLE_SECONDS = 0.002
READER_FETCH_WAIT_MS = 25
"""The KPI reader's fetch wait: the embedded broker holds a fetch about this long."""


@dataclass(frozen=True)
class Latency:
    offered: float
    """Events/s actually offered (the simulator's seasonality moves it around the target)."""
    events: int
    ready: float
    applied: tuple[float, float, float]
    """p50, p90, p99 seconds from publish to applied."""
    kpi: tuple[float, float]
    """p50, p99 seconds from window end to the `1m` KPI record at a consumer."""
    kpi_records: int
    rss_mb: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def measure_latency(
    settings: Settings, bootstrap: KafkaTarget, rate: float, duration: float
) -> Latency:
    run_id = uuid.uuid4().hex[:8]
    topic = f"latency-{run_id}.events"
    await ensure_topics(bootstrap, [TopicSpec(topic, 1)])
    worker_settings = isolated(settings, bootstrap, topic, f"latency-{run_id}")
    worker = Worker(worker_settings, bootstrap)
    stop = asyncio.Event()
    began = time.perf_counter()
    task = asyncio.create_task(worker.run(stop))
    try:
        while not worker.readiness()[0]:
            if task.done():
                task.result()
                raise RuntimeError("worker stopped before it was ready")
            await asyncio.sleep(0.01)
        ready = time.perf_counter() - began
        kpis: list[float] = []
        reader = asyncio.create_task(
            _read_kpis(bootstrap, worker_settings.kpi_topic, kpis, READER_FETCH_WAIT_MS)
        )
        applied: list[tuple[float, int]] = []
        sampler = asyncio.create_task(_sample(worker, applied))
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            loop = asyncio.get_running_loop()
            sent = await loop.run_in_executor(pool, publish_paced, bootstrap, topic, rate, duration)
        while worker.consumed < len(sent):
            if task.done():
                task.result()
                raise RuntimeError("worker stopped during the latency run")
            await asyncio.sleep(0.05)
        # a minute and the watermark delay more, so the last full minute's record arrives
        await asyncio.sleep(settings.watermark_delay_seconds + 2)
        sampler.cancel()
        reader.cancel()
        for helper in (sampler, reader):
            with contextlib.suppress(asyncio.CancelledError):
                await helper
        times = [t for t, _ in applied]
        counts = [n for _, n in applied]
        delays = []
        for index, at in enumerate(sent):
            first = bisect.bisect_right(counts, index)  # first sample with consumed > index
            if first < len(times):
                delays.append(max(0.0, times[first] - at))
        return Latency(
            offered=len(sent) / duration,
            events=len(sent),
            ready=ready,
            applied=(
                percentile(delays, 0.5),
                percentile(delays, 0.9),
                percentile(delays, 0.99),
            ),
            kpi=(percentile(kpis, 0.5), percentile(kpis, 0.99)) if kpis else (0.0, 0.0),
            kpi_records=len(kpis),
            rss_mb=rss_mb(),
        )
    finally:
        stop.set()
        await task


def publish_paced(bootstrap: KafkaTarget, topic: str, rate: float, duration: float) -> list[float]:
    """`_publish_paced` in a process of its own (a child's entry point)."""
    return asyncio.run(_publish_paced(bootstrap, topic, rate, duration))


async def _publish_paced(
    bootstrap: KafkaTarget, topic: str, rate: float, duration: float
) -> list[float]:
    """Send simulated events as their event time (now onwards) comes; return send times."""
    start = datetime.now(UTC)
    config = SimulationConfig(  # the simulated day's seasonality undone: `rate` now
        start=start,
        seed=7,
        rate=rate / daily_level(start.timestamp()),
        duration=duration,
        bad_ratio=0.0,
    )
    producer = new_producer(bootstrap, acks=1, linger_ms=5)
    await start_client(producer, bootstrap)
    sent: list[float] = []
    try:
        for message in simulate(config):
            wait = message.occurred_at - time.time()
            if wait > 0.001:
                await asyncio.sleep(wait)
            sent.append(time.time())
            await producer.send(topic, message.value, key=message.key, partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _sample(worker: Worker, out: list[tuple[float, int]]) -> None:
    last = -1
    while True:
        consumed = worker.consumed
        if consumed != last:
            out.append((time.time(), consumed))
            last = consumed
        await asyncio.sleep(SAMPLE_SECONDS)


async def _read_kpis(bootstrap: KafkaTarget, topic: str, out: list[float], fetch_wait: int) -> None:
    # Short fetches: the reader's own fetch wait (see PULSE_FETCH_MAX_WAIT_MS) is not the worker's.
    consumer = new_consumer(
        bootstrap, topic, group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=fetch_wait
    )
    await start_client(consumer, bootstrap)
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batches.values():
                for record in records:
                    body = orjson.loads(record.value)
                    if body["window"] == "1m" and not body["final"]:
                        out.append(now - float(body["window_end"]))
    finally:
        await consumer.stop()


def table(latency: Latency, settings: Settings) -> list[str]:
    p50, p90, p99 = latency.applied
    k50, k99 = latency.kpi
    delay = settings.watermark_delay_seconds
    kpi = (
        f"  window end -> KPI record  p50 {k50:7.2f} s  | p99 {k99:7.2f} s  "
        f"({latency.kpi_records} 1m records; watermark delay {delay:g} s by design, "
        f"processing adds p99 {max(0.0, k99 - delay):.2f} s)"
        if latency.kpi_records
        else "  window end -> KPI record  none within the run: a window closes once the "
        "newest event time less the largest arrival lag of the partition's sources and the "
        "watermark delay has passed its end; run longer (--latency-seconds)"
    )
    return [
        f"latency at {latency.offered:,.0f} events/s offered ({latency.events} events, event "
        "time = now, one partition):",
        f"  start -> ready            {latency.ready:8.2f} s",
        f"  publish -> applied        p50 {p50 * 1000:7.0f} ms | p90 {p90 * 1000:7.0f} ms | "
        f"p99 {p99 * 1000:7.0f} ms",
        kpi,
        f"  RSS                       {latency.rss_mb:8.0f} MB",
    ]
