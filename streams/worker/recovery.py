"""Partitions assigned and revoked: state rebuilt from the changelog, all or nothing; of the first
batch after it, only what the changelog does not hold (`fetched_after_seek`).

aiokafka calls the rebalance listener inside its group coordinator and only logs an exception
raised there, then carries on with the assignment: a failed replay would leave the worker
consuming on half-rebuilt state. So `Rebalance` keeps any failure as fatal (`Health.fail`),
and the consume loop raises it before it reads anything more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.core import WorkerState
from streams.kafka.changelog import ChangelogWriter, replay
from streams.kafka.connection import KafkaTarget
from streams.worker.health import Health

log = logging.getLogger(__name__)


async def rebuild(
    state: WorkerState,
    writer: ChangelogWriter,
    bootstrap: KafkaTarget,
    changelog_topic: Callable[[str], str],
    by_topic: dict[str, list[int]],
    *,
    committed_only: bool,
) -> tuple[int, dict[TopicPartition, int]]:
    """Fresh state for the partitions, rebuilt from their changelog. Returns the records
    applied and, per partition with a changelog, the input offset to resume at."""
    applied = 0
    resume: dict[TopicPartition, int] = {}
    for topic, parts in by_topic.items():
        counts = dict.fromkeys(parts, 0)
        for p in parts:
            state.partitions[(topic, p)] = state.new_partition()

        def apply(
            p: int, record: dict[str, object], topic: str = topic, counts: dict[int, int] = counts
        ) -> None:
            state.partitions[(topic, p)].restore(record)
            counts[p] += 1

        applied += await replay(
            bootstrap, changelog_topic(topic), parts, apply, committed_only=committed_only
        )
        for p in parts:  # a backlog without a changelog: no progress known yet
            part = state.partitions[(topic, p)]
            part.unread = not part.has_data
            writer.replayed(TopicPartition(topic, p), counts[p])
        shown = state.watermark()
        for p in parts:
            part = state.partitions[(topic, p)]
            part.expire(shown)
            if part.next_offset is not None:
                resume[TopicPartition(topic, p)] = part.next_offset
    return applied, resume


async def fetched_after_seek(
    batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    sought: dict[TopicPartition, int],
    consumer: AIOKafkaConsumer,
) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
    """`batches`, of a recovered partition's first batch (`sought`: the offset recovery sought
    for each partition not read since; taken out as it is read) only the records recovery's seek
    does not hand over again: from the offset it sought (before it, the changelog has them)
    to the consumer's position (from there, the next fetch reads them again).

    aiokafka hands `getmany` a fetch that completes while the rebalance listener still
    replays the changelog. It starts at the group's committed offset, which lags the
    changelog's, and the seek that follows moves the consumer back: counted, its records
    were dead-lettered as duplicates (measured: 400-937 after a clean restart, 2 restarts
    in 3 with a 25 ms fetch wait), and with the committed offset level with the changelog's
    (transactions) they would be read twice. A fetch made after the seek starts at the
    offset sought and moved the position past its last record: all of it is kept.
    Checked once per recovery: a topic that restarted its offsets (read from the earliest
    again, below the offset sought) is sought again, then read."""
    kept = {}
    for tp, records in batches.items():
        offset = sought.pop(tp, None)
        if offset is None or not records:
            kept[tp] = records
            continue
        position = await consumer.position(tp)
        fresh = [r for r in records if offset <= r.offset < position]
        if len(fresh) < len(records):
            log.info(
                "%s[%d]: dropped %d records at %d-%d fetched before recovery sought %d "
                "(the changelog has those before it; the consumer reads the rest again)",
                tp.topic,
                tp.partition,
                len(records) - len(fresh),
                records[0].offset,
                records[-1].offset,
                offset,
            )
            consumer.seek(tp, max(position, offset))
        if fresh:
            kept[tp] = fresh
    return kept


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Recovery and revocation, all or nothing (see the module docstring)."""

    def __init__(
        self,
        health: Health,
        recover: Callable[[list[TopicPartition]], Awaitable[None]],
        revoke: Callable[[list[TopicPartition]], Awaitable[None]],
    ) -> None:
        self._health = health
        self._recover = recover
        self._revoke = revoke

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._kept("handing over", revoked, self._revoke)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._kept("recovering", assigned, self._recover)

    async def _kept(
        self,
        doing: str,
        partitions: list[TopicPartition],
        step: Callable[[list[TopicPartition]], Awaitable[None]],
    ) -> None:
        try:
            await step(partitions)
        except Exception as exc:  # kept, and raised by the consume loop
            self._health.fail(doing, partitions, exc)


def by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for tp in partitions:
        grouped.setdefault(tp.topic, []).append(tp.partition)
    return grouped
