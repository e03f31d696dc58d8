"""Where the merge stage's table recovery ends (`streams.merge.app.fetched_ends`): at the end
offset a fetch states, never short of the last record, whatever the broker's ListOffsets says."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import TopicPartition
from faust.types import TP

from streams.kafka.clients import new_consumer, new_producer
from streams.merge.app import fetched_ends


async def test_the_recovery_end_covers_every_record_of_the_last_batch(
    kafka_bootstrap: str, input_topic: Callable[[int], Awaitable[str]]
) -> None:
    topic = await input_topic(1)
    producer = new_producer(kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"first", key=b"k", partition=0)
        # Three records in one batch: a table's writes that leave together (measured on the
        # embedded broker: ListOffsets then answers the batch's base offset + 1, here 2).
        batch = producer.create_batch()
        for n in range(3):
            assert batch.append(key=b"k", value=b"%d" % n, timestamp=None) is not None
        await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()

    partition = TopicPartition(topic, 0)
    consumer = new_consumer(kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        listed = (await consumer.end_offsets([partition]))[partition]
    finally:
        await consumer.stop()
    tp = TP(topic, 0)
    # Four records written, offsets 0-3: the end is 4 on any broker.
    assert await fetched_ends(kafka_bootstrap, {tp: listed}) == {tp: 4}
