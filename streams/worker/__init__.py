"""The worker: the consume loop that moves batches between Kafka and the core (`worker`)."""

from streams.worker.worker import Worker, state_config

__all__ = ["Worker", "state_config"]
