"""The hostile generator, without a broker: deterministic, every kind present, and each message
answered by the worker's own batch step as its kind says it is owed."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.settings import Settings
from streams.tools.hostile import HOSTILE_KINDS, HostileConfig, hostile_messages, partition_for
from streams.worker import Worker

PARTITIONS = 4


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others() -> None:
    def run(seed: int) -> list[tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]]:
        return [(m.key, m.value, m.headers) for m in hostile_messages(HostileConfig(2000, seed))]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_at_least_twenty_kinds_each_with_its_share() -> None:
    messages = list(hostile_messages(HostileConfig(6000, hostile_ratio=0.4)))
    kinds = Counter(m.kind for m in messages)
    assert len(HOSTILE_KINDS) >= 20
    assert set(kinds) == {"valid", *HOSTILE_KINDS}
    shares = [kinds[k] for k in HOSTILE_KINDS]
    assert max(shares) - min(shares) <= 1  # in turn


def test_near_the_size_limit_means_exactly_at_it_and_just_over() -> None:
    sizes = {
        m.variant: len(m.value or b"")
        for m in hostile_messages(HostileConfig(8000, max_event_bytes=4096))
        if m.kind == "near_size_limit"
    }
    assert sizes == {"at_limit": 4096, "over_by_one": 4097, "twice": 8192}


@pytest.mark.expect_errors  # budget_set periods a datetime cannot hold: internal_error, logged
def test_the_batch_step_answers_every_message_as_owed() -> None:
    messages = list(hostile_messages(HostileConfig(6000, max_event_bytes=8192)))
    worker = Worker(
        Settings(kafka_bootstrap="127.0.0.1:9", metrics_port=0, max_event_bytes=8192),
        "127.0.0.1:9",
    )
    offsets = Counter[int]()
    answers: dict[int, str | None] = {}
    now = time.time()
    for index, message in enumerate(messages):  # one record a batch: arrival order exactly
        partition = partition_for(message.key, PARTITIONS, index)
        tp = TopicPartition("hostile", partition)
        part = worker.state.partitions.get((tp.topic, partition)) or worker.state.assign(
            (tp.topic, partition)
        )
        record = ConsumerRecord(
            tp.topic, partition, offsets[partition], 0, 0, message.key, message.value, None,
            0, 0, list(message.headers),
        )  # fmt: skip
        offsets[partition] += 1
        rejected = worker.step.apply(tp, part, [record], now)
        answers[index] = rejected[0][0].reason if rejected else None
    wrong = Counter(
        (m.kind, m.variant, answers[i])
        for i, m in enumerate(messages)
        if not m.expect.allows(answers[i])  # type: ignore[arg-type]
    )
    assert not wrong
    counted = sum(answer is None for answer in answers.values())
    assert worker.step.pending.processed.total() == counted
