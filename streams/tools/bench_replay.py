"""`pulse bench --replay N`: how fast a worker rebuilds a partition from its changelog.

A live worker writes one changelog record per partition per small batch, so recovery time is set
by the records since the partition's last snapshot (`PULSE_CHANGELOG_SNAPSHOT_RECORDS`). This
writes N live-sized records (a batch of two orders every two seconds of event time, as a quiet
live stream makes them) and times, alternately for a few rounds:
- the *baseline*: a plain aiokafka consumer reading the records and decoding them with orjson;
- the *replay*: `streams.kafka.changelog.replay` restoring them into a fresh partition, as a new
  owner does.
The ratio of medians is what to compare across machines.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from aiokafka import TopicPartition

from schemas import event_adapter
from streams.core import PartitionState, WorkerState
from streams.core.log_records import encode
from streams.kafka.changelog import key_for, replay
from streams.kafka.clients import (
    KEEP_FOREVER,
    TopicSpec,
    ensure_topics,
    new_consumer,
    new_producer,
    quiet_kafka_logs,
)
from streams.kafka.connection import KafkaTarget
from streams.kafka.embedded import kafka_bootstrap
from streams.settings import Settings
from streams.worker.config import state_config

BATCH_EVERY_S = 2
"""Event time between two batches of the simulated live stream."""


def live_records(settings: Settings, count: int) -> list[bytes]:
    """`count` changelog records of one partition fed two orders per batch."""
    state = WorkerState(state_config(settings))
    part = state.new_partition()
    start = int(time.time()) - count * BATCH_EVERY_S
    regions = ("emea", "amer", "apac")
    records = []
    for batch in range(count):
        for i in (2 * batch, 2 * batch + 1):
            at = datetime.fromtimestamp(start + batch * BATCH_EVERY_S, UTC).isoformat()
            part.apply(
                event_adapter.validate_python(
                    {
                        "type": "order_placed",
                        "event_id": f"bench-{i}",
                        "occurred_at": at,
                        "source": "bench",
                        "schema_version": 1,
                        "dimensions": {"business_unit": "retail", "region": regions[i % 3]},
                        "order_id": f"order-{i}",
                        "amount": "10.00",
                        "currency": settings.reporting_currency,
                    }
                )
            )
        records += encode(part.checkpoint(2 * batch + 2))
        if batch % 50 == 0:
            part.expire(part.watermark.value)
    return records


async def run_replay_bench(
    settings: Settings, count: int, rounds: int, say: Callable[[str], None]
) -> float:
    """Write `count` records once; return the ratio (median replay / median plain read)."""
    quiet_kafka_logs()
    records = live_records(settings, count)
    size = sum(map(len, records))
    with kafka_bootstrap(settings) as bootstrap:
        topic = f"bench-{uuid.uuid4().hex[:8]}.changelog"
        await ensure_topics(bootstrap, [TopicSpec(topic, 1, config=dict(KEEP_FOREVER))])
        producer = new_producer(bootstrap)
        await producer.start()
        try:
            sent = [await producer.send(topic, r, key=key_for(0), partition=0) for r in records]
            for future in sent:
                await future
        finally:
            await producer.stop()
        say(f"replay bench: {count} changelog records, {size / count:.0f} B each, at {bootstrap}")
        plains, replays = [], []
        for round_no in range(1, rounds + 1):
            started = time.perf_counter()
            await _read_all(bootstrap, topic, count)
            plain = count / (time.perf_counter() - started)
            started = time.perf_counter()
            part = await _replayed(settings, bootstrap, topic)
            replayed = count / (time.perf_counter() - started)
            if part.next_offset != 2 * count:
                raise RuntimeError(f"replay ended at offset {part.next_offset}, not {2 * count}")
            plains.append(plain)
            replays.append(replayed)
            say(
                f"round {round_no}: plain read {plain:10,.0f} records/s | replay "
                f"{replayed:10,.0f} records/s | ratio {replayed / plain:.2f}"
            )
        plain, replayed = statistics.median(plains), statistics.median(replays)
        say(f"replay: {replayed:10,.0f} records/s (median): {count / replayed:.2f} s for these")
        ratio = replayed / plain
        say(f"ratio: {ratio:.2f}")
        return ratio


async def _replayed(settings: Settings, bootstrap: KafkaTarget, topic: str) -> PartitionState:
    """A fresh partition rebuilt from the records, as a new owner rebuilds it."""
    part = WorkerState(state_config(settings)).new_partition()
    await replay(bootstrap, topic, [0], lambda _, record: part.restore(record))
    return part


async def _read_all(bootstrap: KafkaTarget, topic: str, count: int) -> None:
    """The baseline: read and decode every record, nothing else."""
    consumer = new_consumer(bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        read = 0
        while read < count:
            batches = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
            for batch in batches.values():
                for record in batch:
                    orjson.loads(record.value)
                read += len(batch)
    finally:
        await consumer.stop()
