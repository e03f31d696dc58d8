"""Kafka clients and topics, configured once for every part of kpi-pulse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from streams.errors import BrokerError

log = logging.getLogger(__name__)

# Every topic is created with explicit configs: some brokers only report configs set at creation.
KEEP_FOREVER = {"retention.ms": "-1", "cleanup.policy": "delete"}
KEEP_A_WEEK = {"retention.ms": str(7 * 86400 * 1000), "cleanup.policy": "delete"}
COMPACTED = {"cleanup.policy": "compact", "retention.ms": "-1"}


MAX_REPLICATION = 3


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int = 1
    replication: int | None = None
    """Replicas per partition; None: min(MAX_REPLICATION, brokers in the cluster when the topic
    is created), so that a changelog survives the loss of a broker wherever there is one to
    replicate to (an explicit 1 on a 3-node cluster would not). A replicated topic gets
    `min.insync.replicas` one less than its replicas (unless `config` sets it): with `acks=all`
    a write is then on two brokers of three before it counts, whatever the broker's default."""
    config: dict[str, str] = field(default_factory=lambda: dict(KEEP_A_WEEK))

    def configs(self, replication: int) -> dict[str, str]:
        """The topic configs to create it with at `replication` replicas."""
        if replication <= 1:
            return dict(self.config)
        return {"min.insync.replicas": str(replication - 1)} | self.config


def quiet_kafka_logs() -> None:
    """aiokafka logs a lot at INFO and builds records even when filtered later; keep it to
    warnings (measured: ~13% of CPU otherwise)."""
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.WARNING)


async def ensure_topics(bootstrap: str, topics: Iterable[TopicSpec], wait_s: float = 30) -> None:
    """Create the topics that do not exist yet; raises `BrokerError` when the broker is unusable."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), wait_s)
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            brokers = 1
            if any(t.replication is None for t in missing):
                brokers = len((await admin.describe_cluster())["brokers"])
            default = max(1, min(MAX_REPLICATION, brokers))
            new = [
                NewTopic(t.name, t.partitions, rf, topic_configs=t.configs(rf))
                for t in missing
                for rf in [default if t.replication is None else t.replication]
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics(new)
            log.info("created topics %s", ", ".join(t.name for t in missing))
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BrokerError(f"cannot create topics on {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()


async def topic_partitions(bootstrap: str, topic: str) -> int:
    """Number of partitions of `topic`; raises `BrokerError` when it does not exist."""
    producer = new_producer(bootstrap)
    try:
        await start_client(producer, bootstrap)
        partitions = await producer.partitions_for(topic)
    finally:
        await producer.stop()
    if not partitions:
        raise BrokerError(f"input topic {topic!r} does not exist on {bootstrap}")
    return len(partitions)


def new_producer(bootstrap: str, **overrides: object) -> AIOKafkaProducer:
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "linger_ms": 1,
        "max_batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "enable_idempotence": False,  # the embedded broker cannot; see DESIGN principle 5
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def new_consumer(bootstrap: str, *topics: str, **overrides: object) -> AIOKafkaConsumer:
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_bytes": 16 * 1024 * 1024,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def start_client(client: AIOKafkaProducer | AIOKafkaConsumer, bootstrap: str) -> None:
    """Start a client, turning a connection failure into a `BrokerError` that names the address."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        raise BrokerError(
            f"cannot connect to Kafka at {bootstrap} (PULSE_KAFKA_BOOTSTRAP): {exc}"
        ) from exc
