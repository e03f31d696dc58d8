"""Restart with a large table: weeks of a company's events (every minute, hour and business day
of them a window, and more days than the state keeps as buckets), the worker stopped and started
again; its recovery is measured (printed, not asserted: speed is measured in benchmarks, not
timed tests) and the KPIs afterwards are exactly those of the produced events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from apache_kafka import KafkaCluster
from fault_checks import assert_final_kpis
from fault_processes import StreamProducer, WorkerProcess
from fault_truth import PARTITIONS, Stream, make_stream

from streams.kafka.clients import TopicSpec, ensure_topics
from streams.tools.simulator import SimulationConfig

pytestmark = pytest.mark.fault

LARGE = SimulationConfig(
    # 40 days: more than the 32 business days a partition keeps as day buckets (older ones
    # fold into running totals), at a rate that still gives most minutes an event.
    start=datetime(2026, 1, 20, tzinfo=UTC),
    seed=4040,
    rate=0.03,
    duration=40 * 86400.0,
)


def changelog_bytes(cluster: KafkaCluster, prefix: str) -> int:
    """Bytes of the changelog's log segments on the (single) node's disk."""
    assert cluster.workdir is not None
    return sum(
        path.stat().st_size
        for path in cluster.workdir.glob(f"node-*/data/{prefix}*changelog-*/*.log")
    )


@pytest.fixture(scope="module")
def large_stream() -> Stream:
    return make_stream(LARGE)


async def test_restart_with_a_large_table_recovers_exactly(
    single_node: KafkaCluster,
    large_stream: Stream,
    names: dict[str, str],
    make_worker: Callable[..., WorkerProcess],
    report: Callable[[str], None],
) -> None:
    stream = large_stream
    bootstrap = single_node.bootstrap
    await ensure_topics(bootstrap, [TopicSpec(names["input"], PARTITIONS)])
    worker = make_worker("worker", bootstrap)
    worker.start()
    began = time.monotonic()
    async with StreamProducer(bootstrap, names["input"]) as producer:
        await producer.send(stream.messages)
        await worker.wait_ready(within=300)
        report(
            f"{len(stream.messages)} messages over 40 days of event time, "
            f"{len(stream.truth.counted)} counted, processed in {time.monotonic() - began:.1f} s"
        )
        assert worker.stop() == 0

        worker.start()
        recovered = await worker.wait_assigned(within=300)
        ready = await worker.wait_ready(within=300)
        (recovery,) = worker.recoveries()[-1:]
        size = changelog_bytes(single_node, f"{names['prefix']}.{names['group']}.")
        report(
            f"restart: {recovery.records} changelog records ({size / 1e6:.1f} MB on disk) "
            f"replayed in {recovery.seconds:.2f} s (the worker's figure); assigned "
            f"{recovered:.1f} s and ready {ready:.1f} s after the process started"
        )
        await producer.send_to_partitions(stream.closers)
    await worker.wait_ready()
    rows = await assert_final_kpis(bootstrap, names, stream.truth)
    report(f"{rows} final KPI rows exact")
    assert worker.stop() == 0
