"""Nothing lost at the broker's limits, and nothing half-done stops quietly.

Run on both brokers (`make test` runs this suite on the embedded one and on Apache Kafka with
its default limits, where a record over `max.message.bytes` is refused and, before the fix, a
refused changelog record inside a transaction lost its whole batch silently).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from events import order
from kafka_helpers import WorkerPool, eventually, produce, read_topic

from streams.errors import BadEventRatioExceeded, BrokerError, ConfigError, RecoveryFailed
from streams.kafka.clients import COMPACTED, KEEP_FOREVER, RECORD_LIMIT, TopicSpec, ensure_topics
from streams.settings import Settings
from streams.worker.worker import Worker

LONG = "o" * 122  # with a 6-digit number: 128 characters, the contract's maximum for ids


def _revenue(worker: Worker) -> Decimal:
    """Revenue of every 1-minute window the worker holds (all partitions)."""
    return sum(
        (
            acc
            for part in worker.state.partitions.values()
            for (window, _), accs in part.store.buckets.items()
            if window == "1m"
            for (measure, _), acc in accs.items()
            if measure == "revenue" and isinstance(acc, Decimal)
        ),
        Decimal(0),
    )


async def test_a_batch_too_large_for_one_changelog_record_survives_a_restart(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    workers: WorkerPool,
) -> None:
    topic = await input_topic(1)
    sent = [
        order(f"{LONG}{i:06d}", f"10:00:{i % 60:02d}", "1.25", order_id=f"{LONG}{i:06d}")
        for i in range(5000)
    ]
    await produce(kafka_bootstrap, topic, sent)
    settings = make_settings(batch_max_records=5000)
    first = await workers.start(settings)

    async def counted() -> bool:
        return sum(first.state.processed.values()) == 5000

    await eventually(counted, within=60, what="5,000 orders counted")
    await workers.stop(first)
    changelog = await read_topic(kafka_bootstrap, settings.changelog_topic(topic), 1, within=10)
    sizes = [len(r.value or b"") for r in changelog]
    # 5,000 ids and join starts of 128 characters: ~1.5 MB of checkpoint in parts of < 1 MiB.
    assert sum(sizes) > RECORD_LIMIT
    assert max(sizes) < RECORD_LIMIT
    assert any("part" in orjson.loads(r.value or b"{}") for r in changelog)

    second = await workers.start(settings)
    assert _revenue(second) == Decimal("6250.00")  # 5,000 orders of 1.25, from the changelog
    await produce(kafka_bootstrap, topic, sent[:10])  # resends: the ids were remembered

    async def duplicates() -> bool:
        return second.state.rejected["duplicate"] == 10

    await eventually(duplicates, what="10 resends dead-lettered as duplicates")
    assert _revenue(second) == Decimal("6250.00")
    # Nothing the changelog holds read again: the group's committed offset lags it, and a fetch
    # from there could complete during recovery (2 restarts in 3 at the 25 ms fetch wait,
    # 400-937 records dead-lettered as duplicates, before `worker.recovery.fetched_after_seek`).
    assert second.consumed == 10


async def test_an_input_as_large_as_its_topic_allows_is_dead_lettered_truncated(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(1)
    huge = b'{"type": "order_placed", "pad": "' + b"x" * 1_047_000 + b'"}'
    await produce(kafka_bootstrap, topic, [huge, order("after", "10:00:10", "3.00")])
    settings = make_settings()
    worker = await start_worker(settings)

    (dead,) = await read_topic(kafka_bootstrap, settings.deadletter_topic, 1)

    headers = dict(dead.headers)
    assert headers["pulse.reason"] == b"oversized"
    assert headers["pulse.truncated"] == b"1"
    assert headers["pulse.original_bytes"] == str(len(huge)).encode()
    assert dead.value is not None
    assert huge.startswith(dead.value)
    assert len(dead.value) < len(huge)

    async def counted() -> bool:
        return worker.state.processed["order_placed"] == 1

    await eventually(counted, what="the order after it counted")
    assert worker.state.rejected["oversized"] == 1


@pytest.mark.expect_errors
async def test_a_changelog_that_cannot_be_replayed_stops_the_worker_naming_the_partition(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
) -> None:
    topic = await input_topic(1)
    settings = make_settings()
    changelog = settings.changelog_topic(topic)
    await ensure_topics(kafka_bootstrap, [TopicSpec(changelog, 1, config=dict(KEEP_FOREVER))])
    await produce(kafka_bootstrap, changelog, [b"not a changelog record"])
    await produce(kafka_bootstrap, topic, [order("a", "10:00:10", "1.00")])
    assert settings.kafka_bootstrap
    worker = Worker(settings, settings.kafka_bootstrap)

    with pytest.raises(RecoveryFailed, match=rf"recovering partitions {topic}\[0\] failed"):
        await asyncio.wait_for(worker.run(asyncio.Event()), 60)

    assert not worker.liveness()[0]
    assert sum(worker.state.processed.values()) == 0  # nothing read on half-rebuilt state


@pytest.mark.parametrize("problem", ["compacted", "too few partitions"])
async def test_an_existing_changelog_that_cannot_serve_stops_the_worker_at_start(
    problem: str,
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
) -> None:
    topic = await input_topic(2)
    settings = make_settings()
    changelog = settings.changelog_topic(topic)
    if problem == "compacted":
        spec = TopicSpec(changelog, 2, config=dict(COMPACTED))
        expected = rf"topic '{changelog}' has cleanup.policy=compact"
    else:
        spec = TopicSpec(changelog, 1, config=dict(KEEP_FOREVER))
        expected = rf"topic '{changelog}' has 1 partitions, 2 are needed"
    await ensure_topics(kafka_bootstrap, [spec])
    assert settings.kafka_bootstrap

    with pytest.raises(BrokerError, match=expected):
        await asyncio.wait_for(Worker(settings, settings.kafka_bootstrap).run(asyncio.Event()), 60)


async def test_a_misspelled_input_topic_stops_the_worker_and_is_not_created(
    kafka_bootstrap: str, make_settings: Callable[..., Settings], names: dict[str, str]
) -> None:
    missing = f"{names['input']}-typo"
    settings = make_settings(input_topics=(missing,))
    assert settings.kafka_bootstrap

    with pytest.raises(ConfigError, match=rf"input topic '{missing}' does not exist"):
        await asyncio.wait_for(Worker(settings, settings.kafka_bootstrap).run(asyncio.Event()), 60)

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert missing not in await admin.list_topics()
    finally:
        await admin.close()


@pytest.mark.expect_errors
async def test_past_the_bad_event_ratio_the_worker_writes_what_it_read_so_restarts_move_on(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
) -> None:
    """A burst of 20 bad messages between good ones, a guard of 50% over 10 events: each run
    stops loudly, but only after dead-lettering and checkpointing what it read, so a restart
    resumes after it; a few restarts pass the burst and every good event counts."""
    topic = await input_topic(1)
    settings = make_settings(max_bad_ratio=0.5, bad_ratio_window=10)
    good = [order(f"g{i}", "10:00:10", "1.00") for i in range(5)]
    after = [order(f"h{i}", "10:00:20", "2.00") for i in range(3)]
    burst = [b"garbage %d" % i for i in range(20)]
    await produce(kafka_bootstrap, topic, good + burst + after)
    assert settings.kafka_bootstrap
    processed = stops = 0
    for run in range(5):
        worker = Worker(settings, settings.kafka_bootstrap)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))

        async def done(worker: Worker = worker, task: asyncio.Task[None] = task) -> bool:
            part = worker.state.partitions.get((topic, 0))
            return task.done() or (part is not None and part.next_offset == 28)

        await eventually(done, within=60, what=f"run {run} stopped or read everything")
        await asyncio.wait({task}, timeout=2)  # a trip on the last batch comes after its commit
        stop.set()
        ran = await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 30)
        processed += sum(worker.state.processed.values())
        if ran[0] is None:
            break
        assert isinstance(ran[0], BadEventRatioExceeded), ran[0]
        assert "PULSE_MAX_BAD_RATIO" in str(ran[0])
        stops += 1
    else:
        pytest.fail("the worker never got past the burst")

    assert stops >= 1  # it did stop, loudly
    assert processed == 8  # every good event, each once
    dead = await read_topic(kafka_bootstrap, settings.deadletter_topic, 20)
    assert sorted(int(dict(d.headers)["pulse.offset"]) for d in dead) == list(range(5, 25))
