"""Records handed to the producer, and waiting until the broker has them all."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

Message = tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]] | None, int | None]
"""(topic, key, value, headers, partition) of one record to send."""


async def send_all(
    producer: AIOKafkaProducer, messages: Iterable[Message]
) -> list[asyncio.Future[object]]:
    """Hand messages to the producer; return their acknowledgement futures."""
    return [
        await producer.send(topic, value=value, key=key, headers=headers, partition=partition)
        for topic, key, value, headers, partition in messages
    ]


async def acknowledged(sends: list[asyncio.Future[object]]) -> None:
    """Wait for every send; raise the first failure (the others are retrieved too, so none is
    left for asyncio to report as "never retrieved").

    In a transaction this must come before the commit: a failed send that is not awaited does
    not stop `commit`, which would then commit input offsets past records the broker refused.
    """
    results = await asyncio.gather(*sends, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]
