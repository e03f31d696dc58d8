"""The write-ahead log of partition state (DESIGN principle 5), on a Kafka topic: written
(`ChangelogWriter`) and replayed (`replay`) here, and nowhere else.

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
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from streams.core import PartitionState
from streams.core.log_records import RECORD_BYTES, Groups
from streams.core.log_records import encode as encode_parts
from streams.errors import BrokerError
from streams.kafka.clients import new_admin, new_consumer, start_client
from streams.kafka.connection import KafkaTarget
from streams.kafka.sends import Message

log = logging.getLogger(__name__)

FAILED_CUTS_BEFORE_OFF = 2
"""Changelog cuts failed in a row before snapshots are turned off."""

Apply = Callable[[int, dict[str, Any]], None]
"""Called with (partition, record) for every changelog record, in order."""


def key_for(partition: int) -> bytes:
    return b"p%d" % partition


async def replay(
    bootstrap: KafkaTarget,
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


@dataclass(frozen=True, slots=True)
class Logged:
    """One changelog record to write for input partition `tp` (a checkpoint, a snapshot's
    record, or a part of either), covering the input up to `next_offset`."""

    tp: TopicPartition
    next_offset: int
    payload: bytes
    starts_snapshot: bool = False
    """The first record of a snapshot: once acknowledged, the log before it can go."""


def offsets(logged: Iterable[Logged]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The input offsets the records move past (committed as the group's progress)."""
    return {c.tp: OffsetAndMetadata(c.next_offset, "") for c in logged}


class ChangelogWriter:
    """What each batch writes to the changelog, and the cut of the log before a snapshot.

    `topic_of(input_topic)` names the changelog of an input topic; partition N of it holds the
    state of input partition N. Every `snapshot_records` records of a partition (0: never), a
    batch writes its whole state instead of a checkpoint; once that is acknowledged (committed,
    with transactions) `cut` deletes the log before it. Two failed cuts in a row (a broker
    without DeleteRecords, like the embedded one, or an ACL) turn snapshots off.
    """

    def __init__(
        self,
        bootstrap: KafkaTarget,
        topic_of: Callable[[str], str],
        snapshot_records: int,
        record_bytes: int = RECORD_BYTES,
    ) -> None:
        self._bootstrap = bootstrap
        self._record_bytes = record_bytes
        self._topic_of = topic_of
        self._every = snapshot_records
        self._snapshots = snapshot_records > 0
        self._failed_cuts = 0
        self._logged: dict[TopicPartition, int] = {}
        """Changelog records per input partition since its last snapshot (or in its log)."""
        self._cuts: list[tuple[TopicPartition, asyncio.Future[object]]] = []
        """Snapshots sent and not yet cut before: (changelog partition, first record's send)."""

    @property
    def snapshots(self) -> bool:
        """Whether snapshots are written (off when asked, or after two failed cuts)."""
        return self._snapshots

    def records(self, tp: TopicPartition, part: PartitionState, next_offset: int) -> list[Logged]:
        """The batch's changelog records for `tp`: its checkpoint or, once the log holds
        `snapshot_records` records since the last, a snapshot of the whole state; each within
        the record size a broker accepts (split into parts when larger)."""
        logged = self._logged.get(tp, 0)
        if self._snapshots and logged >= self._every:
            records = part.snapshot(next_offset, self._record_bytes)
        else:
            records = [part.checkpoint(next_offset)]
        payloads = [
            Logged(tp, next_offset, payload, starts_snapshot=index == 0 and record is records[0])
            for record in records
            for index, payload in enumerate(encode_parts(record, self._record_bytes))
        ]
        if "snapshot" in records[0]:
            self._logged[tp] = len(payloads)
            return payloads
        self._logged[tp] = logged + len(payloads)
        return [replace(p, starts_snapshot=False) for p in payloads]

    def messages(self, logged: list[Logged]) -> Iterable[Message]:
        """Each partition's records to the same partition of its changelog."""
        return (
            (self._topic_of(c.tp.topic), key_for(c.tp.partition), c.payload, None, c.tp.partition)
            for c in logged
        )

    def sent(self, logged: list[Logged], sends: list[asyncio.Future[object]]) -> None:
        """Remember the sends of the first record of each snapshot, to cut the log before them
        once they are acknowledged."""
        self._cuts += [
            (TopicPartition(self._topic_of(c.tp.topic), c.tp.partition), send)
            for c, send in zip(logged, sends, strict=True)
            if c.starts_snapshot
        ]

    def replayed(self, tp: TopicPartition, records: int) -> None:
        """`records` were replayed for `tp` (they count toward its next snapshot)."""
        self._logged[tp] = records

    def forget(self, tp: TopicPartition) -> None:
        self._logged.pop(tp, None)

    async def cut(self) -> None:
        """Delete every changelog record before an acknowledged (committed) snapshot: the
        snapshot holds the whole state, so recovery reads from it."""
        cuts, self._cuts = self._cuts, []
        before = {
            tp: RecordsToDelete(sent.result().offset)  # type: ignore[attr-defined]
            for tp, sent in cuts
            if sent.done() and not sent.cancelled() and not sent.exception()
        }
        if not before or not self._snapshots:
            return
        admin = new_admin(self._bootstrap, wait_s=10)
        try:
            await admin.start()
            cut = await admin.delete_records(before, timeout_ms=10_000)
            log.info("changelog cut before snapshots: %s", _partition_offsets(cut))
            self._failed_cuts = 0
        except (KafkaError, OSError, TimeoutError) as exc:
            # Twice in a row: unsupported (the embedded broker drops the connection) or not
            # allowed (an ACL); snapshots that are never cut would only lengthen the log.
            self._failed_cuts += 1
            if self._failed_cuts < FAILED_CUTS_BEFORE_OFF:
                log.warning("changelog cut failed (the next snapshot retries): %r", exc)
                return
            self._snapshots = False
            log.warning(
                "changelog cut failed again (%r): snapshots are off, and each partition's "
                "changelog grows until the topic's retention (the broker needs DeleteRecords)",
                exc,
            )
        finally:
            with contextlib.suppress(KafkaError, OSError):
                await admin.close()


def _partition_offsets(offsets: dict[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, o in sorted(offsets.items()))
