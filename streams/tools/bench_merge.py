"""`pulse bench --merge`: the merge stage's throughput, and the latency it adds.

1. Live: one worker with `PULSE_MERGE_STAGE=true` reads `events` simulated events from a fresh
   topic while a merge stage runs. Once the stage has handled every partial, each window instance
   (provisional and final) gives one latency: the first company-wide record's `emitted_at` minus
   the broker timestamp of the window's last partial (the worker's send time, as its window
   closed). Printed as p50/p99: what the merge stage adds to the worker's own publishing.
2. Backlog: the partials of (1) are copied to a fresh prefix's partials topic, then read by the
   baseline (a plain aiokafka consumer decoding every record with `decode_record`) and by a fresh
   merge stage (from its first record handled to its last). Printed as partials/s and their
   ratio, the figure to compare across machines.
3. Restore: the time a restarted stage takes to resume detection over a week of hourly history
   (`streams.tools.bench_restore`).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.core.partials import Partial, decode_record
from streams.kafka.clients import (
    COMPACTED,
    TopicSpec,
    ensure_topics,
    new_consumer,
    new_producer,
    quiet_kafka_logs,
    start_client,
    topic_partitions,
)
from streams.kafka.connection import KafkaTarget
from streams.kafka.embedded import kafka_bootstrap
from streams.merge.stage import MergeStage
from streams.settings import Settings
from streams.tools.bench_common import isolated
from streams.tools.bench_restore import restore_week
from streams.tools.publisher import publish
from streams.tools.simulator import SimulationConfig, simulate
from streams.worker.config import state_config
from streams.worker.worker import Worker

START = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
RESTORE_PAIRS = 400
"""Series of the restore measure (a company's revenue by business unit and region, finely cut)."""
IDLE_S = 3.0
"""The stage has handled everything once its count stands still this long."""


async def run_merge_bench(
    settings: Settings,
    events: int,
    partitions: int,
    say: Callable[[str], None],
    restore_pairs: int = RESTORE_PAIRS,
) -> float:
    """Run both parts; return merge stage partials/s over the baseline's."""
    quiet_kafka_logs()
    logging.getLogger("streams").setLevel(logging.ERROR)
    with kafka_bootstrap(settings) as bootstrap:
        run_id = uuid.uuid4().hex[:8]
        topic = f"bench-{run_id}.events"
        await ensure_topics(bootstrap, [TopicSpec(topic, partitions)])
        live = isolated(
            settings, bootstrap, topic, f"bench-{run_id}", merge_stage=True, detection=False
        )
        # Ten events per simulated second: windows close every few hundred events, and the
        # stream outlasts PULSE_SOURCE_IDLE_SECONDS (a rare source holds a partition's watermark
        # back until then). Then a closer per partition makes every window of an hour final.
        config = SimulationConfig(start=START, rate=10.0, duration=events / 10.0 * 1.5)
        messages = [m for _, m in zip(range(events), simulate(config), strict=False)]
        await publish(bootstrap, topic, messages, paced=False)
        close_at = datetime.fromtimestamp(max(m.occurred_at for m in messages), UTC)
        await _close(bootstrap, topic, partitions, close_at + timedelta(hours=2))
        say(f"bench --merge: {len(messages)} events on {partitions} partitions at {bootstrap}")

        records = await _live(live, bootstrap, len(messages), partitions, say)
        copy = live.model_copy(update={"topic_prefix": f"bench-{run_id}-copy"})
        await ensure_topics(bootstrap, [TopicSpec(copy.partials_topic, 1, config=dict(COMPACTED))])
        producer = new_producer(bootstrap)
        await start_client(producer, bootstrap)
        try:
            sends = [await producer.send(copy.partials_topic, r.value, key=r.key) for r in records]
            await asyncio.gather(*sends)
        finally:
            await producer.stop()

        baseline = await _baseline(bootstrap, copy.partials_topic, len(records))
        stage_rate = await _stage_rate(copy, bootstrap, len(records))
        ratio = stage_rate / baseline
        say(f"baseline: {baseline:10,.0f} partials/s (plain aiokafka + decode_record)")
        say(f"merge:    {stage_rate:10,.0f} partials/s (the Faust merge stage, tables and output)")
        restore_week(state_config(settings).catalog, restore_pairs, say)
        say(f"ratio: {ratio:.3f}")
        return ratio


async def _live(
    settings: Settings,
    bootstrap: KafkaTarget,
    events: int,
    partitions: int,
    say: Callable[[str], None],
) -> list[ConsumerRecord[bytes, bytes]]:
    """Worker and stage together; print the latencies; return the partials topic's records."""
    stage = MergeStage(settings, str(bootstrap))
    worker = Worker(settings, bootstrap)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(stage.run(stop))]
    try:
        await asyncio.wait_for(stage.ready.wait(), 120)
        tasks.append(asyncio.create_task(worker.run(stop)))
        started = time.perf_counter()
        while worker.consumed < events + partitions:
            _check(tasks)
            await asyncio.sleep(0.05)
        say(f"worker:   {events / (time.perf_counter() - started):10,.0f} events/s (with partials)")
        last, still = -1, time.monotonic()
        while time.monotonic() - still < IDLE_S:
            _check(tasks)
            if stage.records != last:
                last, still = stage.records, time.monotonic()
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    partials = await _read_all(bootstrap, settings.partials_topic)
    kpis = await _read_all(bootstrap, settings.kpi_topic)
    closed: dict[tuple[str, int, bool], float] = {}
    for record in partials:
        decoded = decode_record(record.value)
        if isinstance(decoded, Partial):
            key = (decoded.instance.window, decoded.instance.start, decoded.final)
            closed[key] = max(closed.get(key, 0.0), record.timestamp / 1000)
    published: dict[tuple[str, int, bool], float] = {}
    for record in kpis:
        body = orjson.loads(record.value)
        key = (body["window"], body["window_start"], body["final"])
        published[key] = min(published.get(key, float("inf")), body["emitted_at"])
    added = sorted(published[k] - closed[k] for k in closed.keys() & published.keys())
    if len(added) >= 2:
        p50, p99 = statistics.median(added), statistics.quantiles(added, n=100)[98]
        say(
            f"latency:  window closed at the worker -> company-wide record: p50 "
            f"{p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms over {len(added)} window instances"
        )
    return partials


async def _stage_rate(settings: Settings, bootstrap: KafkaTarget, count: int) -> float:
    """Partials/s of a fresh merge stage over a backlog of `count` records."""
    stage = MergeStage(settings, str(bootstrap))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(stage.run(stop))]
    try:
        await asyncio.wait_for(stage.ready.wait(), 120)
        while stage.records == 0:
            _check(tasks)
            await asyncio.sleep(0.001)
        first = time.perf_counter()
        while stage.records < count:
            _check(tasks)
            await asyncio.sleep(0.005)
        return (count - 1) / (time.perf_counter() - first)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _baseline(bootstrap: KafkaTarget, topic: str, count: int) -> float:
    """Partials/s of a plain consumer that reads and decodes them, and nothing else."""
    consumer = new_consumer(bootstrap, group_id=None)
    await start_client(consumer, bootstrap)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        seen, first = 0, 0.0
        while seen < count:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                first = first or time.perf_counter()
                for record in records:
                    decode_record(record.value)
                seen += len(records)
        return (count - 1) / (time.perf_counter() - first)
    finally:
        await consumer.stop()


async def _read_all(bootstrap: KafkaTarget, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of every partition of `topic` (read until idle for 1.5 s)."""
    count = await topic_partitions(bootstrap, topic)
    consumer = new_consumer(bootstrap, group_id=None)
    await start_client(consumer, bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        idle = time.monotonic()
        while time.monotonic() - idle < 1.5:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                idle = time.monotonic()
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def _close(bootstrap: KafkaTarget, topic: str, partitions: int, at: datetime) -> None:
    """One counted event feeding no KPI per partition, at `at`."""
    producer = new_producer(bootstrap)
    await start_client(producer, bootstrap)
    try:
        for partition in range(partitions):
            body = {
                "event_id": f"closer-{partition}",
                "type": "shipment_dispatched",
                "occurred_at": at.isoformat(),
                "source": "bench",
                "schema_version": 1,
                "dimensions": {"business_unit": "retail", "region": "de"},
                "order_id": "none",
                "shipment_id": "none",
            }
            await producer.send_and_wait(topic, orjson.dumps(body), partition=partition)
    finally:
        await producer.stop()


def _check(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done():
            task.result()
            raise RuntimeError("a bench service stopped before the bench finished")
