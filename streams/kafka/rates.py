"""FX rates as a global table: every worker converts with every rate, whoever read its event.

An `fx_rate` event is counted by the worker owning its input partition, which forwards each rate
into the reporting currency to the compacted `<prefix>.rates` topic (key `CUR|occurred_at`, so a
resent or replayed rate overwrites itself). Every worker reads that topic in full with a
group-less consumer assigned all its partitions: to its end before it consumes any input, then
tailed, feeding the worker's shared `FxTable`.

What remains ordered by time, not by the stream: a rate converts the events a worker processes
after the rate reached it. Between a rate's event being counted on one worker and the rates
topic bringing it to another (one batch plus a fetch, usually well under a second), the other
worker converts at the rate it knew before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.core.money import FxTable
from streams.errors import BrokerError
from streams.kafka.clients import new_consumer, start_client, topic_partitions
from streams.kafka.connection import KafkaTarget

log = logging.getLogger(__name__)

Rate = tuple[str, float, str]
"""(currency, effective from in epoch seconds, rate as a decimal string): what
`PartitionState.shared_rates` gives and the rates topic holds."""


def rate_record(rate: Rate) -> tuple[bytes, bytes]:
    """(key, value) of one rate on the rates topic."""
    currency, effective_from, value = rate
    when = datetime.fromtimestamp(effective_from, UTC).isoformat()
    body = {"currency": currency, "effective_from": effective_from, "rate": value}
    return f"{currency}|{when}".encode(), orjson.dumps(body)


def parse_rate(value: bytes | None) -> Rate | None:
    """The rate a rates-topic record holds, or None if it holds none (written by someone else)."""
    try:
        body = orjson.loads(value or b"")
        currency, when, rate = body["currency"], float(body["effective_from"]), body["rate"]
        number = Decimal(rate)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidOperation):
        return None
    ok = isinstance(currency, str) and len(currency) == 3 and currency.isupper()
    if not ok or not number.is_finite() or number <= 0:
        return None
    return currency, when, rate


class RatesTable:
    """Reads the rates topic into `fx`: `start` returns once it has read to the end and then
    tails it in the background; `stop` ends that. A failure of the tail sets `stop_worker` and
    is raised by `raise_failure`, so the worker stops loudly rather than convert with rates it
    no longer receives."""

    def __init__(self, bootstrap: KafkaTarget, topic: str, fx: FxTable) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.fx = fx
        self.applied = 0
        self.skipped = 0
        """Records holding no rate (not written by kpi-pulse); logged and left."""
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, stop_worker: asyncio.Event, wait_s: float = 120.0) -> None:
        """Read the topic to its end (raises `BrokerError` after `wait_s`), then tail it."""
        # Waits for the metadata of the topic the worker has just created (Apache Kafka may take
        # a moment to report it).
        partitions = await topic_partitions(self.bootstrap, self.topic)
        consumer = self._consumer = new_consumer(self.bootstrap, group_id=None)
        await start_client(consumer, self.bootstrap)
        started = time.monotonic()
        assigned = [TopicPartition(self.topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        pending = set(assigned)
        while pending:
            if time.monotonic() - started > wait_s:
                raise BrokerError(f"rates topic {self.topic} not read to its end within {wait_s}s")
            await self._read(consumer, timeout_ms=200)
            for tp in list(pending):
                end = consumer.highwater(tp)  # not end_offsets(): wrong on some brokers
                if end is not None and await consumer.position(tp) >= end:
                    pending.discard(tp)
        log.info(
            "read %d rates from %s in %.2fs", self.applied, self.topic, time.monotonic() - started
        )
        self._task = asyncio.create_task(self._tail(consumer))
        self._task.add_done_callback(lambda _: stop_worker.set())

    async def _tail(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            await self._read(consumer, timeout_ms=500)

    async def _read(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> None:
        batches = await consumer.getmany(timeout_ms=timeout_ms)
        for records in batches.values():
            for record in records:
                rate = parse_rate(record.value)
                if rate is None:
                    self.skipped += 1
                    log.warning("%s offset %d holds no rate: skipped", self.topic, record.offset)
                    continue
                currency, when, value = rate
                self.fx.set_rate(currency, when, Decimal(value))
                self.applied += 1

    def raise_failure(self) -> None:
        """Raise what stopped the tail, if it stopped by failing."""
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise BrokerError(f"reading rates from {self.topic} failed: {error!r}") from error

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(KafkaError):
                await self._consumer.stop()
