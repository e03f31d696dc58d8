"""The processing guarantee a worker runs with, decided at start from what the broker can do.

- **exactly-once** (a broker with transactions, e.g. Apache Kafka): each batch's outputs (dead
  letters, changelog record, KPI and anomaly records) and its input offsets are one Kafka
  transaction. A crash aborts the open one; the changelog is replayed `read_committed`, so the
  state, the outputs and the offsets move together or not at all.
- **at-least-once with idempotent state** (a broker without transactions, e.g. the embedded
  Tansu): outputs are acknowledged before the changelog record that moves past them, so a crash
  replays the batch: state stays exact (dedupe by `event_id`, absolute values in the changelog,
  resume at the changelog's offset), and a dead letter or anomaly record can appear twice.

`PULSE_PROCESSING_GUARANTEE`: `auto` (default) takes exactly-once when the broker can and says
so in the log; `exactly_once` refuses to start without it; `at_least_once` never uses
transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from streams.errors import BrokerError, ConfigError
from streams.kafka.clients import new_producer, start_client
from streams.kafka.connection import KafkaTarget
from streams.settings import Settings

log = logging.getLogger(__name__)

Guarantee = Literal["exactly_once", "at_least_once"]
TRANSACTION_TIMEOUT_MS = 10_000
"""A crashed worker's open transaction blocks `read_committed` readers (the next owner's
changelog replay) until the coordinator aborts it: keep that short."""
PROBE_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Delivery:
    """The worker's producer and what it guarantees."""

    guarantee: Guarantee
    producer: AIOKafkaProducer
    transactional_id: str | None = None

    @property
    def transactional(self) -> bool:
        return self.transactional_id is not None


async def open_delivery(bootstrap: KafkaTarget, settings: Settings) -> Delivery:
    """A started producer: transactional when the setting and the broker allow it.

    Raises `ConfigError` when `exactly_once` is required and the broker has no transactions,
    `BrokerError` when the broker cannot be reached.
    """
    wanted = settings.processing_guarantee
    if wanted != "at_least_once":
        transactional_id = f"{settings.topic_prefix}.{settings.consumer_group}.{uuid.uuid4().hex}"
        producer = new_producer(
            bootstrap,
            transactional_id=transactional_id,
            enable_idempotence=True,
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        )
        try:
            with _quiet_sender():  # a broker without transactions is an answer, not an error
                await asyncio.wait_for(start_client(producer, bootstrap), PROBE_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            await producer.stop()
            if wanted == "exactly_once":
                raise ConfigError(
                    "PULSE_PROCESSING_GUARANTEE=exactly_once, but the broker at "
                    f"{bootstrap} has no transactions: {exc!r}"
                ) from exc
            log.info(
                "processing guarantee: at-least-once with idempotent state (the broker has no "
                "transactions: %r)",
                exc,
            )
        except BrokerError:
            await producer.stop()
            raise
        else:
            log.info(
                "processing guarantee: exactly-once (Kafka transactions, id %s)", transactional_id
            )
            return Delivery("exactly_once", producer, transactional_id)
    else:
        log.info("processing guarantee: at-least-once with idempotent state (as configured)")
    producer = new_producer(bootstrap)
    await start_client(producer, bootstrap)
    return Delivery("at_least_once", producer)


@contextlib.contextmanager
def _quiet_sender() -> Iterator[None]:
    """aiokafka's sender logs a failed InitProducerId as an ERROR; while probing it is not."""
    sender = logging.getLogger("aiokafka.producer.sender")
    level = sender.level
    sender.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        sender.setLevel(level)
