"""What every bench's worker shares: settings of its own on one input topic."""

from __future__ import annotations

from streams.kafka.connection import KafkaTarget
from streams.settings import Settings


def isolated(
    settings: Settings, bootstrap: KafkaTarget, topic: str, name: str, **extra: object
) -> Settings:
    """`settings` for a bench worker reading `topic`: prefix and consumer group `name` (its own
    output topics and offsets), /metrics on any free port, plus `extra`."""
    return settings.model_copy(
        update={
            "kafka_bootstrap": str(bootstrap),
            "input_topics": (topic,),
            "topic_prefix": name,
            "consumer_group": name,
            "metrics_port": 0,
            **extra,
        }
    )
