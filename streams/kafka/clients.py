"""Kafka clients and topics, configured once for every part of kpi-pulse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from streams.errors import BrokerError, ConfigError
from streams.kafka.connection import KafkaTarget, client_options
from streams.kafka.partitioner import Murmur2Partitioner

log = logging.getLogger(__name__)

RECORD_LIMIT = 1_048_588
"""`max.message.bytes` of every topic kpi-pulse creates: Apache Kafka's default, set explicitly
so that what the worker writes is bounded for it (`streams.core.log_records`,
`streams.kafka.deadletter.MAX_DEAD_LETTER_BYTES`) whatever the broker's default."""

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
    check_partitions: bool = False
    """An existing topic with fewer partitions stops the worker (a changelog needs one per
    input partition)."""

    def configs(self, replication: int) -> dict[str, str]:
        """The topic configs to create it with at `replication` replicas."""
        configs = {"max.message.bytes": str(RECORD_LIMIT)} | self.config
        if replication <= 1:
            return configs
        return {"min.insync.replicas": str(replication - 1)} | configs


def quiet_kafka_logs() -> None:
    """aiokafka logs a lot at INFO and builds records even when filtered later; keep it to
    warnings (measured: ~13% of CPU otherwise)."""
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.WARNING)


def new_admin(target: KafkaTarget, wait_s: float = 30) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(target), request_timeout_ms=int(wait_s * 1000))


async def ensure_topics(
    bootstrap: KafkaTarget, topics: Iterable[TopicSpec], wait_s: float = 30
) -> None:
    """Create the topics that do not exist yet and check those that do.

    Raises `BrokerError` when the broker is unusable or an existing topic cannot serve: a
    cleanup policy other than the spec's (a compacted changelog would keep one record per
    partition), or fewer partitions than a `check_partitions` spec needs.
    """
    topics = list(topics)
    admin = new_admin(bootstrap, wait_s)
    try:
        await asyncio.wait_for(admin.start(), wait_s)
        existing = set(await admin.list_topics())
        await _check_existing(admin, [t for t in topics if t.name in existing])
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


async def _check_existing(admin: AIOKafkaAdminClient, topics: list[TopicSpec]) -> None:
    """Raise `BrokerError` naming the first existing topic that cannot serve its spec."""
    if not topics:
        return
    described = {t["topic"]: t for t in await admin.describe_topics([t.name for t in topics])}
    configs = await _topic_configs(admin, [t.name for t in topics])
    for spec in topics:
        count = len(described.get(spec.name, {}).get("partitions", ()))
        if spec.check_partitions and count < spec.partitions:
            raise BrokerError(
                f"topic {spec.name!r} has {count} partitions, {spec.partitions} are needed (one "
                "per input partition): delete it (its state is then rebuilt from the input) or "
                "add partitions"
            )
        # Compaction is what matters: a compacted log keeps one record per key (a changelog
        # would lose its history), and a KPI topic that is not compacted grows forever.
        # "compact,delete" on the KPI topic (compaction plus retention) is fine.
        wanted = spec.config.get("cleanup.policy")
        actual = configs.get(spec.name, {}).get("cleanup.policy")
        if wanted and actual and ("compact" in actual) != ("compact" in wanted):
            raise BrokerError(
                f"topic {spec.name!r} has cleanup.policy={actual}; kpi-pulse needs "
                f"cleanup.policy={wanted} (alter the topic's config, or delete it)"
            )


async def _topic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """Configs the broker reports per topic (some brokers report only those set explicitly)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    found: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            if resource["error_code"]:
                continue
            found[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry["config_value"] is not None
            }
    return found


async def topic_partitions(bootstrap: KafkaTarget, topic: str, wait_s: float = 30) -> int:
    """Number of partitions of `topic`; raises `ConfigError` when it does not exist (a topic to
    read is a setting; the worker never creates one).

    Asks the admin client's topic list first: a metadata request for an unknown topic creates it
    on brokers with `auto.create.topics.enable` (both brokers we test on, by default), so a
    misspelled input topic would be created empty and read forever.
    """
    admin = new_admin(bootstrap, wait_s)
    try:
        await asyncio.wait_for(admin.start(), wait_s)
        existing = set(await admin.list_topics())
        if topic not in existing:
            close = sorted(t for t in existing if not t.startswith("__"))[:20]
            raise ConfigError(
                f"input topic {topic!r} does not exist on {bootstrap} (PULSE_INPUT_TOPICS); "
                f"topics there: {', '.join(close) or 'none'}"
            )
        (described,) = await admin.describe_topics([topic])
        return len(described["partitions"])
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BrokerError(f"cannot read topic {topic!r} on {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()


def new_producer(bootstrap: KafkaTarget, **overrides: object) -> AIOKafkaProducer:
    options: dict[str, object] = {
        **client_options(bootstrap),
        "acks": "all",
        "linger_ms": 1,
        "max_batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "enable_idempotence": False,  # the embedded broker cannot; see DESIGN principle 5
        "partitioner": Murmur2Partitioner(),  # aiokafka's default partitions, hashed faster
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def new_consumer(bootstrap: KafkaTarget, *topics: str, **overrides: object) -> AIOKafkaConsumer:
    options: dict[str, object] = {
        **client_options(bootstrap),
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_bytes": 16 * 1024 * 1024,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def start_client(client: AIOKafkaProducer | AIOKafkaConsumer, bootstrap: KafkaTarget) -> None:
    """Start a client, turning a connection failure into a `BrokerError` that names the address."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        raise BrokerError(
            f"cannot connect to Kafka at {bootstrap} (PULSE_KAFKA_BOOTSTRAP): {exc}"
        ) from exc
