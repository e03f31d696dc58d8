"""State across partitions and across worker restarts (changelog recovery)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

from aiokafka import TopicPartition
from events import order
from kafka_helpers import WorkerPool, eventually, produce, revenue_of, scrape, value_of

from streams.kafka.clients import new_consumer
from streams.settings import Settings
from streams.worker.worker import Worker


async def test_window_closes_only_when_every_partition_passed_it(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(2)
    worker = await start_worker(make_settings())
    await produce(kafka_bootstrap, topic, [order("a1", "10:00:10", "10.00")], partition=0)
    await produce(kafka_bootstrap, topic, [order("b1", "10:00:20", "2.50")], partition=1)
    # Partition 0 runs ahead to 10:03 (watermark 10:02:55); partition 1 only to 10:01:10
    # (watermark 10:01:05): the newest window closed everywhere is [10:00, 10:01).
    await produce(kafka_bootstrap, topic, [order("a2", "10:03:00", "1.00")], partition=0)
    await produce(kafka_bootstrap, topic, [order("b2", "10:01:10", "4.00")], partition=1)

    async def shows(expected: dict[tuple[str, str], float]) -> bool:
        return revenue_of(await scrape(worker.server.url)) == expected

    await eventually(lambda: shows({("retail", "emea"): 10.00 + 2.50}), what="sum of partitions")
    # Partition 1 catches up to 10:02:10 (watermark 10:02:05): [10:01, 10:02) closes, holding
    # b2 only (a2 is in [10:03, 10:04)).
    await produce(kafka_bootstrap, topic, [order("b3", "10:02:10", "8.00")], partition=1)
    await eventually(lambda: shows({("retail", "emea"): 4.00}), what="next window")


async def test_restarted_worker_recovers_state_from_the_changelog(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    workers: WorkerPool,
) -> None:
    topic = await input_topic(1)
    settings = make_settings()
    first = await workers.start(settings)
    x = order("x", "10:01:10", "70.00")
    await produce(
        kafka_bootstrap,
        topic,
        [order("w1", "10:00:10", "1.00"), x, order("w2", "10:01:20", "0.50", region="amer")],
    )

    async def counted(worker: Worker, n: int) -> bool:
        return sum(worker.state.processed.values()) == n

    await eventually(lambda: counted(first, 3), what="first worker counted 3")
    await workers.stop(first)

    second = await workers.start(settings)
    await produce(
        kafka_bootstrap,
        topic,
        [
            x,  # a resend of an event the first worker counted: must be a duplicate
            order("y", "10:01:40", "5.00"),
            order("z", "10:02:50", "1.00"),  # watermark 10:02:45 closes [10:01, 10:02)
        ],
    )
    expected = {("retail", "emea"): 70.00 + 5.00, ("retail", "amer"): 0.50}

    async def shows() -> bool:
        return revenue_of(await scrape(second.server.url)) == expected

    await eventually(shows, what="recovered plus new revenue")

    async def two_orders() -> bool:  # counters move once the batch is durable, just after
        samples = await scrape(second.server.url)
        return value_of(samples, "pulse_events_processed_total", type="order_placed") == 2

    # The second worker resumed after the first one's last offset: it read only its 3 messages.
    await eventually(two_orders, what="2 orders counted by the second worker")
    samples = await scrape(second.server.url)
    assert value_of(samples, "pulse_events_rejected_total", reason="duplicate") == 1


async def test_a_snapshot_cuts_the_changelog_and_recovery_starts_from_it(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    workers: WorkerPool,
    deletes_records: bool,
) -> None:
    topic = await input_topic(1)
    settings = make_settings(changelog_snapshot_records=3)
    first = await workers.start(settings)
    amounts = [Decimal(2**i) for i in range(8)]  # 1 + 2 + ... + 128 = 255.00
    for i, amount in enumerate(amounts):  # a batch each: 8 changelog records, 2 snapshots
        await produce(kafka_bootstrap, topic, [order(f"o{i}", f"10:00:{10 + i}", f"{amount}")])
        await eventually(lambda n=i + 1: counted(first, n), what=f"{i + 1} counted")
    changelog = TopicPartition(settings.changelog_topic(topic), 0)

    async def log_starts_after_0() -> bool:
        return (await beginning_offset(kafka_bootstrap, changelog)) > 0

    if deletes_records:
        await eventually(log_starts_after_0, what="the changelog cut before a snapshot")
    else:  # the embedded broker: snapshots turn off at the first cut, nothing is lost
        await eventually(lambda: nothing_to(not first.changelog.snapshots), what="snapshots off")
        assert await beginning_offset(kafka_bootstrap, changelog) == 0
    await workers.stop(first)

    second = await workers.start(settings)
    await produce(kafka_bootstrap, topic, [order("closer", "10:01:30", "0.50")])  # closes 10:00

    async def shows() -> bool:
        return revenue_of(await scrape(second.server.url)) == {("retail", "emea"): 255.00}

    await eventually(shows, what="the recovered revenue of the 10:00 minute")
    # It resumed after the snapshot's offset: one event read (counted once its batch is durable,
    # just after the revenue shows; then nothing more comes).
    await eventually(lambda: counted(second, 1), what="the closer counted")
    await asyncio.sleep(1.0)
    assert sum(second.state.processed.values()) == 1


async def counted(worker: Worker, n: int) -> bool:
    return sum(worker.state.processed.values()) == n


async def nothing_to(value: bool) -> bool:
    return value


async def beginning_offset(bootstrap: str, tp: TopicPartition) -> int:
    consumer = new_consumer(bootstrap, group_id=None)
    await consumer.start()
    try:
        return (await consumer.beginning_offsets([tp]))[tp]
    finally:
        await consumer.stop()
