"""Client helpers for integration tests: produce, read a topic, scrape /metrics, wait."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from streams.kafka.clients import new_consumer, new_producer, topic_partitions
from streams.kafka.connection import KafkaTarget, connection
from streams.settings import Settings
from streams.worker.worker import Worker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def produce(
    bootstrap: KafkaTarget, topic: str, values: list[bytes], partition: int = 0
) -> None:
    """Send `values` in order to one partition and wait for every acknowledgement."""
    producer = new_producer(bootstrap, linger_ms=0)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value=value, partition=partition)
    finally:
        await producer.stop()


Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]], int | None]
"""(key, value, headers, partition) of one record to produce (partition None: the client's
partitioner, murmur2 of the key)."""


async def produce_records(
    bootstrap: str, topic: str, records: list[Record], chunk: int = 2000
) -> list[tuple[int, int]]:
    """Send `records` in order (keys, headers and partitions as given), acknowledged a chunk at
    a time; return each one's (partition, offset)."""
    producer = new_producer(bootstrap, linger_ms=5)
    await producer.start()
    where: list[tuple[int, int]] = []
    try:
        for start in range(0, len(records), chunk):
            sends = [
                await producer.send(topic, value=v, key=k, headers=h, partition=p)
                for k, v, h, p in records[start : start + chunk]
            ]
            where += [(m.partition, m.offset) for m in await asyncio.gather(*sends)]
    finally:
        await producer.stop()
    return where


async def read_topic(
    bootstrap: str, topic: str, count: int, within: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read exactly `count` records from partition 0 of `topic` (fails on fewer), then check
    briefly that no more arrive."""
    consumer = new_consumer(bootstrap, group_id=None)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + within
        while len(records) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        extra = await consumer.getmany(timeout_ms=1000)
        records.extend(r for batch in extra.values() for r in batch)
    finally:
        await consumer.stop()
    return records


async def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    within: float = 60.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read every partition of `topic` from the beginning until `done(records so far)` holds
    (fails after `within` seconds, showing how many records were read)."""
    # The admin client's topic list, not the consumer's metadata: a consumer just started has
    # none for the topic yet (and a metadata request would create a missing topic).
    tps = [TopicPartition(topic, p) for p in range(await topic_partitions(bootstrap, topic))]
    consumer = new_consumer(bootstrap, group_id=None)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + within
        while not done(records):
            assert time.monotonic() < deadline, f"{topic}: not done after {len(records)} records"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def revenue_of(samples: Samples, window: str = "1m") -> dict[tuple[str, str], float]:
    """`pulse_revenue` of one window kind, by (business_unit, region)."""
    return {
        (labels["business_unit"], labels["region"]): value
        for (name, frozen), value in samples.items()
        if name == "pulse_revenue" and (labels := dict(frozen))["window"] == window
    }


def value_of(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 30.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not reached within {within} s")


class WorkerPool:
    """Workers run in this event loop, each stopped (and awaited) on `stop` or at teardown."""

    def __init__(self) -> None:
        self._running: dict[int, tuple[asyncio.Event, asyncio.Task[None]]] = {}

    async def start(self, settings: Settings) -> Worker:
        assert settings.kafka_bootstrap
        worker = Worker(settings, connection(settings, settings.kafka_bootstrap))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        waiter = asyncio.create_task(worker.assigned.wait())
        await asyncio.wait([waiter, task], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()
        assert worker.assigned.is_set(), "worker got no partitions within 60 s"
        self._running[id(worker)] = (stop, task)
        return worker

    def stopped(self, worker: Worker) -> BaseException | None:
        """Why `worker` stopped on its own (its exception, or a `RuntimeError` when it
        returned), or None while it runs."""
        _, task = self._running[id(worker)]
        if not task.done():
            return None
        if task.cancelled():
            return RuntimeError("the worker's task was cancelled")
        return task.exception() or RuntimeError("the worker returned")

    async def stop(self, worker: Worker) -> None:
        stop, task = self._running.pop(id(worker))
        stop.set()
        await asyncio.wait_for(task, 30)

    async def stop_all(self) -> None:
        for stop, _ in self._running.values():
            stop.set()
        for _, task in self._running.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
        self._running.clear()
