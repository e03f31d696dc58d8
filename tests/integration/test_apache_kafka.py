"""Apache Kafka 4.x from Maven Central (`apache_kafka`), for what Tansu cannot do.

One node: a consumer group reads what was produced and commits its offset; a transactional
producer initialises (InitProducerId), commits and aborts, and a read_committed reader sees only
the committed records. Three nodes: a replication-3 topic keeps taking acks=all writes with one
node SIGKILLed (min.insync.replicas=2 holds), and the node rejoins every ISR after a restart.

Each test starts its own cluster, so these run whatever PULSE_KAFKA_BOOTSTRAP says.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from apache_kafka import KafkaCluster
from kafka_helpers import eventually, produce

from streams.kafka.clients import TopicSpec, ensure_topics, new_consumer, new_producer

pytestmark = pytest.mark.apache_kafka


@pytest.fixture
def single_node() -> Iterator[KafkaCluster]:
    with KafkaCluster(nodes=1) as cluster:
        yield cluster


@pytest.fixture
def three_nodes() -> Iterator[KafkaCluster]:
    with KafkaCluster(nodes=3) as cluster:
        yield cluster


def _name(kind: str) -> str:
    return f"ak-{kind}-{uuid.uuid4().hex[:8]}"


async def _read_all(
    bootstrap: str, topic: str, partitions: int, count: int, **options: Any
) -> dict[int, list[bytes]]:
    """Every record of `topic` (at least `count` in all), by partition, without a group."""
    consumer = new_consumer(bootstrap, group_id=None, **options)
    await consumer.start()
    found: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 30
        while sum(map(len, found.values())) < count and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found[tp.partition].extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    return found


async def _partitions(bootstrap: str, topic: str) -> dict[int, dict[str, Any]]:
    """Partition → its metadata (`leader`, `replicas`, `isr`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {p["partition"]: p for p in described["partitions"]}


async def test_one_node_serves_groups_and_transactions(single_node: KafkaCluster) -> None:
    bootstrap = single_node.bootstrap
    assert bootstrap.startswith("127.0.0.1:")
    assert all(pid is not None for pid in single_node.pids.values())

    topic = _name("plain")
    await ensure_topics(bootstrap, [TopicSpec(topic, 1)])
    sent = [f"m{i}".encode() for i in range(5)]
    await produce(bootstrap, topic, sent)
    group = f"{topic}-group"
    consumer = new_consumer(bootstrap, topic, group_id=group)
    await consumer.start()
    try:
        received: list[bytes] = []

        async def all_received() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            received.extend(r.value for rs in batches.values() for r in rs if r.value)
            return len(received) >= len(sent)

        await eventually(all_received, within=30, what="5 records through a consumer group")
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()
    assert received == sent
    assert committed == 5

    # The topic is created by the first transactional send (auto.create.topics.enable).
    tx_topic = _name("tx")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{tx_topic}-tx")
    await producer.start()  # InitProducerId: fails on Tansu
    try:
        async with producer.transaction():
            await producer.send_and_wait(tx_topic, b"t1")
            await producer.send_and_wait(tx_topic, b"t2")
        await producer.begin_transaction()
        await producer.send_and_wait(tx_topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(tx_topic, b"t3")
    finally:
        await producer.stop()
    committed_view = await _read_all(bootstrap, tx_topic, 1, 3, isolation_level="read_committed")
    everything = await _read_all(bootstrap, tx_topic, 1, 4, isolation_level="read_uncommitted")
    assert committed_view == {0: [b"t1", b"t2", b"t3"]}
    assert everything == {0: [b"t1", b"t2", b"aborted", b"t3"]}


async def test_three_nodes_keep_acks_all_writes_with_one_node_killed(
    three_nodes: KafkaCluster,
) -> None:
    cluster = three_nodes
    bootstrap = cluster.bootstrap
    assert len(bootstrap.split(",")) == 3
    topic = _name("rf3")
    await ensure_topics(bootstrap, [TopicSpec(topic, 3, replication=3)])

    async def fully_replicated() -> bool:
        partitions = await _partitions(bootstrap, topic)
        return len(partitions) == 3 and all(len(p["isr"]) == 3 for p in partitions.values())

    await eventually(fully_replicated, within=30, what="3 in-sync replicas per partition")
    victim = (await _partitions(bootstrap, topic))[0]["leader"]

    async def write(batch: str) -> None:
        # acks=all (the default of new_producer): every in-sync replica has each record.
        producer = new_producer(bootstrap, linger_ms=0, request_timeout_ms=30_000)
        await producer.start()
        try:
            for partition in range(3):
                await producer.send_and_wait(
                    topic, f"{batch}-{partition}".encode(), partition=partition
                )
        finally:
            await producer.stop()

    await write("before")
    cluster.kill(victim, signal.SIGKILL)
    assert cluster.pids[victim] is None
    await write("while-down")  # partition 0 has to fail over to a new leader first

    async def victim_out_of_every_isr() -> bool:
        partitions = await _partitions(bootstrap, topic)
        return all(
            p["leader"] != victim and victim not in p["isr"] and len(p["isr"]) == 2
            for p in partitions.values()
        )

    await eventually(victim_out_of_every_isr, within=30, what="the killed node fenced")

    cluster.start_node(victim)  # same data dir and ports
    await cluster.wait_ready_async(60)
    assert cluster.pids[victim] is not None
    await eventually(fully_replicated, within=60, what="the restarted node back in every ISR")
    await write("after")

    expected = {
        p: [f"{b}-{p}".encode() for b in ("before", "while-down", "after")] for p in range(3)
    }
    assert await _read_all(bootstrap, topic, 3, 9) == expected
