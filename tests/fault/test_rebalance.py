"""Scale 1 -> 2 -> 1 workers in one consumer group while the stream flows.

After each rebalance settles, the union of the workers' /metrics holds every partition's partial
sums exactly once: each worker's additive KPI gauges (revenue, COGS, orders, OpEx, every flow
window it shows) equal the sums over the events of the partitions it owns, at several scrapes,
so no worker shows a series of a partition it gave away (stale) and no two workers both show a
partition (duplicate). At the end, every final KPI record is exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from apache_kafka import KafkaCluster
from fault_checks import additive_rows, assert_final_kpis, compare_shown, owned_partitions
from fault_processes import StreamProducer, WorkerProcess
from fault_truth import PARTITIONS, Key, Stream, watermark_of

from streams.kafka.clients import TopicSpec, ensure_topics

pytestmark = pytest.mark.fault

RATE = 4000.0
"""Messages per second: each third of the stream takes ~9 s, and a worker joins or leaves 3 s
into the second and third."""
SCRAPES = 3


async def settled(workers: list[WorkerProcess], within: float = 60.0) -> dict[str, set[int]]:
    """Wait until every worker is ready with no lag and the partitions its /metrics report
    (consumer lag series) split the input partitions between them; the split."""
    deadline = time.monotonic() + within
    while True:
        owners: dict[str, set[int]] = {}
        for worker in workers:
            ready = await worker.readyz()
            if ready is None or ready["status"] != "ok" or ready["lag_messages"]:
                break
            owned = owned_partitions(await worker.scrape())
            if len(owned) != ready["partitions"]:
                break
            owners[worker.name] = owned
        else:
            every = [p for owned in owners.values() for p in owned]
            if sorted(every) == list(range(PARTITIONS)):
                return owners
        assert time.monotonic() < deadline, f"no settled assignment within {within} s: {owners}"
        await asyncio.sleep(0.3)


async def check_exports(
    workers: list[WorkerProcess],
    owners: dict[str, set[int]],
    stream: Stream,
    partition_of: list[int],
    produced: int,
) -> int:
    """Every worker's /metrics at `SCRAPES` scrapes against the events of its partitions among
    the first `produced` messages; returns how many series were compared."""
    on = {p: stream.truth.counted_on(p, partition_of, produced) for p in range(PARTITIONS)}
    rows: dict[str, dict[Key, Decimal]] = {}
    newest: dict[str, float] = {}
    for name, owned in owners.items():
        rows[name] = additive_rows([e for p in sorted(owned) for e in on[p]])
        # the watermark: the slowest owned partition's, each following its slowest active source
        newest[name] = min(watermark_of(on[p]) for p in owned)
    compared = 0
    for _ in range(SCRAPES):
        for worker in workers:
            samples = await worker.scrape()
            assert owned_partitions(samples) == owners[worker.name], "the assignment moved"
            watermark = samples[("pulse_watermark_timestamp_seconds", frozenset())]
            assert watermark == newest[worker.name], f"{worker.name} watermark"
            series, problems = compare_shown(samples, rows[worker.name])
            assert not problems, f"{worker.name} owning {owners[worker.name]}: {problems[:5]}"
            compared += series
        await asyncio.sleep(0.5)
    return compared


async def test_scale_one_two_one_exports_each_partition_once(
    single_node: KafkaCluster,
    stream: Stream,
    names: dict[str, str],
    make_worker: Callable[..., WorkerProcess],
    report: Callable[[str], None],
) -> None:
    bootstrap = single_node.bootstrap
    await ensure_topics(bootstrap, [TopicSpec(names["input"], PARTITIONS)])
    first, second = make_worker("worker-1", bootstrap), make_worker("worker-2", bootstrap)
    messages = stream.messages
    thirds = [len(messages) * n // 3 for n in range(4)]
    first.start()
    async with StreamProducer(bootstrap, names["input"]) as producer:

        async def phase(number: int, change: Callable[[], None] | None, what: str) -> None:
            began = time.monotonic()
            sending = asyncio.create_task(
                producer.send(messages[thirds[number - 1] : thirds[number]], rate=RATE)
            )
            if change is not None:
                await asyncio.sleep(3.0)
                began = time.monotonic()
                change()
            await sending
            sent = time.monotonic()
            workers = [w for w in (first, second) if w.alive()]
            owners = await settled(workers)
            timing = f"settled {time.monotonic() - sent:.1f} s after the phase's last message"
            if change is not None:
                timing += f", {time.monotonic() - began:.1f} s after the change"
            series = await check_exports(
                workers, owners, stream, producer.partitions, thirds[number]
            )
            split = ", ".join(f"{n} owns {sorted(p)}" for n, p in owners.items())
            report(f"{what}: {timing}; {split}; {series // SCRAPES} series exact per scrape")

        await phase(1, None, "one worker")
        await phase(2, second.start, "1 -> 2")
        exits: list[int] = []
        await phase(3, lambda: exits.append(second.stop()), "2 -> 1")
        assert exits == [0]
        await producer.send_to_partitions(stream.closers)
    await first.wait_ready()
    rows = await assert_final_kpis(bootstrap, names, stream.truth)
    report(f"{rows} final KPI rows exact")
    for worker in (first, second):
        for recovery in worker.recoveries():
            report(
                f"{worker.name} lifetime {recovery.lifetime}: {recovery.partitions} assigned, "
                f"{recovery.records} changelog records replayed in {recovery.seconds:.2f} s"
            )
    assert first.stop() == 0
