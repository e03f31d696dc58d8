"""Input records without a Kafka key: counted and visible, or dead-lettered (PULSE_KEY_POLICY)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord
from events import order
from kafka_helpers import eventually, read_topic, read_until, revenue_of, scrape, value_of

from streams.kafka.clients import new_producer
from streams.settings import Settings
from streams.worker import Worker


async def produce_keyed(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]
) -> None:
    """Send (key, value) records in order to partition 0; a None key is sent as no key."""
    producer = new_producer(bootstrap, linger_ms=0)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key, partition=0)
    finally:
        await producer.stop()


RECORDS = [
    (b"order-k1", order("k1", "10:00:10", "10.00")),
    (None, order("n1", "10:00:20", "1.00")),
    (b"order-k2", order("k2", "10:00:30", "20.00")),
    (None, order("n2", "10:00:40", "2.00")),
    (b"order-k3", order("k3", "10:01:30", "0.50")),  # watermark 10:01:25 closes 10:00
]


async def test_unkeyed_records_are_counted_and_processed_by_default(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(1)
    worker = await start_worker(make_settings(detection=False))
    await produce_keyed(kafka_bootstrap, topic, RECORDS)

    async def counted() -> bool:
        samples = await scrape(worker.server.url)
        return value_of(samples, "pulse_unkeyed_events_total", topic=topic) == 2.0 and (
            revenue_of(samples) == {("retail", "emea"): 33.00}  # 10 + 1 + 20 + 2, all counted
        )

    await eventually(counted, what="2 unkeyed records counted, 10:00 revenue 33.00")
    assert sum(worker.state.rejected.values()) == 0


async def test_with_key_policy_require_unkeyed_records_are_dead_lettered(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(1)
    settings = make_settings(detection=False, key_policy="require")
    worker = await start_worker(settings)
    await produce_keyed(kafka_bootstrap, topic, RECORDS)

    async def counted() -> bool:
        samples = await scrape(worker.server.url)
        return (
            value_of(samples, "pulse_unkeyed_events_total", topic=topic) == 2.0
            and value_of(samples, "pulse_events_rejected_total", reason="unkeyed") == 2.0
            and revenue_of(samples) == {("retail", "emea"): 30.00}  # 10 + 20, keyed only
        )

    await eventually(counted, what="2 unkeyed dead-lettered, 10:00 revenue 30.00")
    dead = await read_topic(kafka_bootstrap, settings.deadletter_topic, 2)
    assert [r.value for r in dead] == [RECORDS[1][1], RECORDS[3][1]]  # original bytes, in order
    assert [dict(r.headers)["pulse.reason"] for r in dead] == [b"unkeyed", b"unkeyed"]
    assert all(r.key is None for r in dead)


async def test_kpi_records_are_on_the_partition_the_java_partitioner_gives_their_key(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    """Our producers hash keys with their own murmur2 (`Murmur2Partitioner`): each KPI record of
    the 3-partition KPI topic is where aiokafka's (so the Java client's) murmur2 puts its key, so
    a consumer keyed on a KPI finds all its records on one partition."""
    topic = await input_topic(1)
    settings = make_settings(detection=False)
    await start_worker(settings)
    await produce_keyed(kafka_bootstrap, topic, RECORDS)

    def window_closed(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        return any(r.key and r.key.startswith(b"revenue|1m|") for r in records)

    records = await read_until(kafka_bootstrap, settings.kpi_topic, window_closed)
    assert len({r.partition for r in records}) > 1  # keys spread over the partitions
    for record in records:
        assert record.key is not None
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % 3, record.key
