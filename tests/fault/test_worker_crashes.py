"""kill -9 of the worker at seeded-random moments of a 100k+ message stream, restarting it each
time: the KPIs at the end are exactly those of the produced events.

A killed worker loses the batch it was applying and its open transaction (exactly-once, the
default on Apache Kafka); its successor replays the changelog and resumes at the last record's
offset, so every event must count exactly once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest
from apache_kafka import KafkaCluster
from fault_checks import assert_final_kpis, parse_metrics
from fault_processes import StreamProducer, WorkerProcess
from fault_truth import PARTITIONS, Stream

from streams.kafka.clients import TopicSpec, ensure_topics

pytestmark = pytest.mark.fault

SEED = 1122
RATE = 3000.0
"""Messages per second: the stream lasts ~37 s, long enough for every kill and restart, and a
restarted worker finds a backlog of several thousand messages to work through."""
KILLS = (("start", 2.0, 6.0), ("assigned", 0.0, 1.5), ("start", 0.5, 3.0), ("assigned", 0.0, 1.5))
"""Each kill: its anchor in the worker's lifetime (the process start, or the log line saying
its state is recovered) and the range of its seeded-random delay after it. So the kills land
while the worker runs live, while it joins the group or replays, and while it works through the
backlog its predecessor's death left."""


async def watch_counters(worker: WorkerProcess, seen: dict[int, float]) -> None:
    """Scrape the worker every 0.25 s as Prometheus would: the highest `processed + rejected`
    each lifetime showed (a scrape that spans a restart is not kept)."""
    while True:
        lifetime = worker.lifetimes
        answer = await worker.get("/metrics")
        if answer is not None and answer[0] == 200 and worker.lifetimes == lifetime:
            total = sum(
                value
                for (name, _), value in parse_metrics(answer[1]).items()
                if name in ("pulse_events_processed_total", "pulse_events_rejected_total")
            )
            seen[lifetime] = max(seen.get(lifetime, 0.0), total)
        await asyncio.sleep(0.25)


async def phase_of(worker: WorkerProcess) -> str:
    """What the worker was doing when killed, from its log and /readyz."""
    if "assigned [" not in worker.current_log():
        return "starting, joining the group or replaying"
    ready = await worker.readyz()
    if ready is None:
        return "assigned, not answering"
    if ready["lag_messages"]:
        return f"processing, {ready['lag_messages']} messages behind"
    return "processing, caught up"


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
async def test_kill_9_at_random_moments_loses_nothing(
    guarantee: str,
    single_node: KafkaCluster,
    *,
    stream: Stream,
    names: dict[str, str],
    make_worker: Callable[..., WorkerProcess],
    report: Callable[[str], None],
) -> None:
    """Both guarantees: Kafka transactions (the default on Apache Kafka), and at-least-once
    with idempotent state (what a broker without transactions gets), whose one-batch-deep
    pipelined acknowledgements a kill -9 tests most."""
    bootstrap = single_node.bootstrap
    await ensure_topics(bootstrap, [TopicSpec(names["input"], PARTITIONS)])
    worker = make_worker("worker", bootstrap, PULSE_PROCESSING_GUARANTEE=guarantee)
    worker.start()
    rng = random.Random(SEED)
    counters: dict[int, float] = {}
    watching = asyncio.create_task(watch_counters(worker, counters))
    async with StreamProducer(bootstrap, names["input"]) as producer:
        began = time.monotonic()
        sending = asyncio.create_task(producer.send(stream.messages, rate=RATE))
        for number, (anchor, low, high) in enumerate(KILLS, start=1):
            delay = round(rng.uniform(low, high), 2)
            at = worker.started_at
            if anchor == "assigned":
                at += await worker.wait_assigned()
            await asyncio.sleep(max(0.0, at + delay - time.monotonic()))
            assert not sending.done(), "the stream ended before every kill"
            phase = await phase_of(worker)
            produced = len(producer.partitions)
            worker.kill()  # SIGKILL
            report(
                f"kill {number}: {delay:.2f} s after {anchor}, {time.monotonic() - began:.1f} s "
                f"into the stream, {produced} messages produced, worker {phase}"
            )
            worker.start()
        await sending
        await producer.send_to_partitions(stream.closers)
    produced_at = time.monotonic()
    report(f"{len(stream.messages)} messages in {produced_at - began:.1f} s")
    await worker.wait_ready(within=120)
    report(f"caught up {time.monotonic() - produced_at:.1f} s after the last message")
    ready = await worker.readyz()
    assert ready is not None
    assert ready["guarantee"] == guarantee
    await asyncio.sleep(1.0)  # a few more scrapes of the caught-up worker
    watching.cancel()
    # Counters count a batch once it is durable, so a batch read again after a kill is not
    # counted twice: what Prometheus adds up over the lifetimes (each restart a counter reset)
    # never exceeds the messages produced, each of which is counted or rejected once.
    produced = len(stream.messages) + len(stream.closers)
    report(f"counters over {len(counters)} lifetimes: {sum(counters.values()):.0f} of {produced}")
    assert sum(counters.values()) <= produced
    assert counters[worker.lifetimes] > 0

    rows = await assert_final_kpis(bootstrap, names, stream.truth)
    for recovery in worker.recoveries():
        report(
            f"lifetime {recovery.lifetime}: {len(recovery.partitions)} partitions assigned, "
            f"{recovery.records} changelog records replayed in {recovery.seconds:.2f} s"
        )
    assert worker.stop() == 0
    assert "worker stopped cleanly" in worker.current_log()
    report(f"{rows} KPI rows exact; {len(stream.truth.counted)} events counted")
