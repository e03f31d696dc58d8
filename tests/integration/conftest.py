"""Integration fixtures: a real Kafka broker, unique names per test, worker and client helpers.

The broker is the embedded Tansu one unless PULSE_KAFKA_BOOTSTRAP points at another Kafka; every
test gets its own topics and consumer group, so the suite runs against any shared broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import KafkaError
from kafka_helpers import WorkerPool

from streams.kafka.clients import TopicSpec, ensure_topics
from streams.kafka.embedded import EmbeddedBroker
from streams.settings import Settings
from streams.worker.worker import Worker

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """`PULSE_KAFKA_BOOTSTRAP` if set; else Apache Kafka (one node, started here) when
    `KPI_PULSE_TEST_BROKER=apache`; else the embedded broker."""
    configured = os.environ.get("PULSE_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    if os.environ.get("KPI_PULSE_TEST_BROKER", "embedded") == "apache":
        from apache_kafka import KafkaCluster  # noqa: PLC0415 - needs java and mvn

        with KafkaCluster(nodes=1) as cluster:
            yield cluster.bootstrap
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def transactions(kafka_bootstrap: str) -> bool:
    """Whether the broker under test has Kafka transactions (a bare aiokafka probe)."""

    async def probe() -> bool:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, transactional_id=f"probe-{uuid.uuid4().hex}"
        )
        try:
            await asyncio.wait_for(producer.start(), 20)
        except (KafkaError, TimeoutError):
            return False
        finally:
            await producer.stop()
        return True

    return asyncio.run(probe())


@pytest.fixture(scope="session")
def deletes_records(kafka_bootstrap: str) -> bool:
    """Whether the broker under test has DeleteRecords (a bare aiokafka probe on a topic of
    its own)."""

    async def probe() -> bool:
        topic = f"probe-{uuid.uuid4().hex}"
        await ensure_topics(kafka_bootstrap, [TopicSpec(topic)])
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await (await producer.send(topic, b"x", partition=0))
        finally:
            await producer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(1)})
        except KafkaError:
            return False
        finally:
            with contextlib.suppress(KafkaError):
                await admin.close()
        return True

    return asyncio.run(probe())


@pytest.fixture
def names() -> dict[str, str]:
    """Unique topic prefix, input topic and consumer group for one test."""
    tag = uuid.uuid4().hex[:10]
    return {
        "prefix": f"it-{tag}",
        "input": f"it-{tag}.events",
        "group": f"it-{tag}-workers",
    }


@pytest.fixture
def make_settings(kafka_bootstrap: str, names: dict[str, str]) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": names["prefix"],
            "input_topics": (names["input"],),
            "consumer_group": names["group"],
            "metrics_port": 0,
            "session_timeout_ms": 6000,
            "watermark_delay_seconds": 5.0,
            "allowed_lateness_seconds": 30.0,
            "max_event_bytes": 2048,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def input_topic_sync(kafka_bootstrap: str, names: dict[str, str]) -> str:
    """This test's input topic (1 partition), for tests that are not coroutines."""
    asyncio.run(ensure_topics(kafka_bootstrap, [TopicSpec(names["input"], 1)]))
    return names["input"]


@pytest.fixture
async def input_topic(
    kafka_bootstrap: str, names: dict[str, str]
) -> Callable[[int], Awaitable[str]]:
    async def create(partitions: int = 1) -> str:
        await ensure_topics(kafka_bootstrap, [TopicSpec(names["input"], partitions)])
        return names["input"]

    return create


@pytest.fixture
async def workers() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool()
    yield pool
    await pool.stop_all()


@pytest.fixture
def start_worker(workers: WorkerPool) -> Callable[[Settings], Awaitable[Worker]]:
    return workers.start
