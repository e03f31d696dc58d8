"""The write-ahead log of partition state (DESIGN principle 5), on a Kafka topic.

Changelog partition N holds the state of input partition N. Each record is one
`PartitionState.checkpoint`: the keys changed by one batch and the source offset after it, so a
record is both data and commit marker. Recovery reads the partition to its end, applying every
record; consumption resumes at the last record's `next_offset`. A crash between processing a batch
and its record being acknowledged replays that batch: nothing lost, and dedupe plus absolute
values keep it from counting twice.

Records are bounded (`streams.core.log_records`): one too large for the broker goes as parts,
which replay applies only once the last part is read (a group cut short by a crash is dropped,
and its batch read again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.core.log_records import Groups
from streams.core.log_records import encode as encode_parts
from streams.errors import BrokerError
from streams.kafka.clients import new_consumer, start_client

log = logging.getLogger(__name__)

Apply = Callable[[int, dict[str, Any]], None]
"""Called with (partition, record) for every changelog record, in order."""


def encode(record: dict[str, Any]) -> list[bytes]:
    """One record as changelog payloads: itself, or its parts when too large for one."""
    return encode_parts(record)


def key_for(partition: int) -> bytes:
    return b"p%d" % partition


async def replay(
    bootstrap: str,
    topic: str,
    partitions: list[int],
    apply: Apply,
    wait_s: float = 120.0,
    *,
    committed_only: bool = False,
) -> int:
    """Apply every record of `topic`'s `partitions` in order; return how many were applied.

    The parts of a split record are applied together once the last is read; an unfinished
    group is not applied (see the module docstring).

    `committed_only` (workers with transactions): skip records of aborted transactions, and wait
    for open ones to end (the coordinator aborts a crashed producer's after its timeout).
    Uses its own group-less consumer. Ends at each partition's high-water mark as seen by the
    fetch (not `end_offsets`, which some brokers report wrong). Raises `BrokerError` on timeout.
    """
    if not partitions:
        return 0
    isolation = "read_committed" if committed_only else "read_uncommitted"
    consumer = new_consumer(bootstrap, group_id=None, isolation_level=isolation)
    await start_client(consumer, bootstrap)
    applied = 0
    try:
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        pending = set(assigned)
        groups = {p: Groups() for p in partitions}
        deadline = time.monotonic() + wait_s
        while pending:
            if time.monotonic() > deadline:
                raise BrokerError(f"changelog {topic} not replayed within {wait_s}s")
            batches = await consumer.getmany(*pending, timeout_ms=200, max_records=10_000)
            for tp, records in batches.items():
                for record in records:
                    for whole in groups[tp.partition].feed(orjson.loads(record.value)):
                        apply(tp.partition, whole)
                        applied += 1
            for tp in list(pending):
                end = _end(consumer, tp)
                if end is not None and await consumer.position(tp) >= end:
                    pending.discard(tp)
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    for p, group in groups.items():
        if dropped := group.finish():
            log.warning(
                "changelog %s[%d]: %d parts of unfinished records skipped", topic, p, dropped
            )
    return applied


def _end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """Where the replay of `tp` ends: the high-water mark, also with `committed_only`.

    Not the last stable offset: a crashed owner's open transaction holds it back until the
    coordinator aborts it, while the owners after that one commit checkpoints behind it. Ending
    there would leave those out, resume at an older offset and write a second branch of the
    changelog, which a later replay (once the transaction is aborted) reads after the first,
    ending on one branch's offset with the other's dedupe ids: events lost. A read_committed
    consumer cannot pass an open transaction, so this waits for it to end (after the worker's
    transaction timeout, `streams.kafka.guarantee.TRANSACTION_TIMEOUT_MS`, and the broker's next
    sweep of timed-out transactions)."""
    highwater = consumer.highwater(tp)
    return None if highwater is None else int(highwater)
