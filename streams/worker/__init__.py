"""The worker: the consume loop that moves batches between Kafka and the core (`worker`)."""

from streams.worker.config import state_config
from streams.worker.worker import Worker

__all__ = ["Worker", "state_config"]
