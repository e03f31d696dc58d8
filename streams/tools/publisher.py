"""Publishes simulated messages to Kafka (or a JSON-lines file), paced on the simulated clock.

Messages whose event time is already past are sent at once (a backfill); later ones wait until
their time comes, so `--rate 50` really is about 50 events per second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from aiokafka import AIOKafkaProducer

from streams.kafka.clients import new_producer, start_client
from streams.kafka.connection import KafkaTarget
from streams.tools.simulator import SimulatedMessage

FLUSH_EVERY = 2000


@dataclass
class PublishStats:
    sent: int = 0
    bad: int = 0


async def publish(
    bootstrap: KafkaTarget,
    topic: str,
    messages: Iterable[SimulatedMessage],
    stop: asyncio.Event | None = None,
    *,
    paced: bool = True,
    stats: PublishStats | None = None,
) -> PublishStats:
    """Send `messages` to `topic`; returns counts. Stops early when `stop` is set."""
    stats = stats or PublishStats()
    producer = new_producer(bootstrap, acks=1, linger_ms=20)
    await start_client(producer, bootstrap)
    try:
        await _send(producer, topic, messages, stop, paced=paced, stats=stats)
        await producer.flush()
    finally:
        await producer.stop()
    return stats


async def _send(
    producer: AIOKafkaProducer,
    topic: str,
    messages: Iterable[SimulatedMessage],
    stop: asyncio.Event | None,
    *,
    paced: bool,
    stats: PublishStats,
) -> None:
    pending: list[asyncio.Future[object]] = []
    for message in messages:
        if stop is not None and stop.is_set():
            break
        if paced:
            wait = message.occurred_at - time.time()
            if wait > 0:
                await _gather(pending)
                if stop is None:
                    await asyncio.sleep(wait)
                else:
                    try:
                        await asyncio.wait_for(stop.wait(), wait)
                        break
                    except TimeoutError:
                        pass
        pending.append(await producer.send(topic, value=message.value, key=message.key))
        stats.sent += 1
        stats.bad += message.bad_kind is not None
        if len(pending) >= FLUSH_EVERY:
            await _gather(pending)
    await _gather(pending)


async def _gather(pending: list[asyncio.Future[object]]) -> None:
    if pending:
        await asyncio.gather(*pending)
        pending.clear()


def write_jsonl(messages: Iterable[SimulatedMessage], out: IO[bytes] | Path) -> PublishStats:
    """Write message values one per line (bad ones included, as they would be published)."""
    stats = PublishStats()
    handle = out.open("wb") if isinstance(out, Path) else out
    try:
        for message in messages:
            handle.write(message.value.replace(b"\n", b" ") + b"\n")
            stats.sent += 1
            stats.bad += message.bad_kind is not None
    finally:
        if isinstance(out, Path):
            handle.close()
    return stats
