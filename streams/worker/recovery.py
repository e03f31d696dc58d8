"""Partitions assigned and revoked: state rebuilt from the changelog, all or nothing.

aiokafka calls the rebalance listener inside its group coordinator and only logs an exception
raised there, then carries on with the assignment: a failed replay would leave the worker
consuming on half-rebuilt state. So `Rebalance` keeps any failure as fatal (`Health.fail`),
and the consume loop raises it before it reads anything more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiokafka import ConsumerRebalanceListener, TopicPartition

from streams.core import WorkerState
from streams.kafka.changelog import ChangelogWriter, replay
from streams.kafka.connection import KafkaTarget
from streams.worker.health import Health


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
