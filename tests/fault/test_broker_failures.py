"""A 3-node Apache Kafka cluster (replication 3, min.insync.replicas 2) under the worker: one
broker SIGKILLed mid-stream and brought back, then every node restarted mid-stream; the KPIs at
the end are exactly those of the produced events.

The worker is supervised as an orchestrator would: should it exit, it is started again (and the
test reports it), since a worker cannot be expected to outlive a cluster with no broker at all.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from apache_kafka import KafkaCluster
from fault_checks import assert_final_kpis
from fault_processes import StreamProducer, WorkerProcess
from fault_truth import PARTITIONS, Stream

from streams.kafka.clients import TopicSpec, ensure_topics

pytestmark = pytest.mark.fault

RATE = 2500.0
"""Messages per second: the stream lasts ~45 s, across both outages."""
BROKER_KILL_AT = 8.0
BROKER_DOWN_S = 8.0
"""Longer than the 6 s broker session: the controller fences the node and leaders move."""
CLUSTER_RESTART_AT = 30.0
GRACE_S = 15.0
"""SIGTERM to every node at once, SIGKILL after this: a broker whose controlled shutdown starts
when the others are gone waits for a controller that cannot answer."""


async def describe(bootstrap: str, topics: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Topic -> its partitions' metadata (`partition`, `leader`, `replicas`, `isr`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {t["topic"]: sorted(t["partitions"], key=lambda p: p["partition"]) for t in described}


TOPIC_CONFIG = 1
"""DescribeConfigs `config_source`: set on the topic itself (not a broker default)."""


async def topic_setting(bootstrap: str, topics: list[str], name: str) -> dict[str, tuple[str, int]]:
    """Topic -> (value, config_source) of its config `name`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    return {
        resource[3]: (entry[1], entry[3])
        for response in responses
        for resource in response.resources
        for entry in resource[4]
        if entry[0] == name
    }


async def until(done: Callable[[], bool], within: float) -> bool:
    """Whether `done()` came true within `within` seconds."""
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def restart_cluster(cluster: KafkaCluster) -> tuple[float, list[int], float]:
    """SIGTERM every node at once, as a cluster-wide restart does, SIGKILL those still up after
    `GRACE_S` (as an orchestrator does), start them all again: (seconds to stop, nodes killed,
    seconds until every broker is back)."""
    began = time.monotonic()
    for node in cluster.node_ids:
        cluster.kill(node, signal.SIGTERM)
    await until(lambda: all(pid is None for pid in cluster.pids.values()), GRACE_S)
    killed = [node for node, pid in cluster.pids.items() if pid is not None]
    for node in killed:
        cluster.kill(node, signal.SIGKILL)
    stopped = time.monotonic()
    for node in cluster.node_ids:
        cluster.start_node(node)
    await cluster.wait_ready_async(120)
    return stopped - began, killed, time.monotonic() - stopped


async def supervise(worker: WorkerProcess, restarts: list[str], stop: asyncio.Event) -> None:
    """Start the worker again whenever it exits, as an orchestrator would."""
    while not stop.is_set():
        if not worker.alive():
            code = worker.process.returncode if worker.process else None
            restarts.append(f"exited with {code}")
            worker.exits.append(code if code is not None else -1)
            await asyncio.sleep(1.0)
            worker.start()
        await asyncio.sleep(0.2)


async def ready_under_supervision(worker: WorkerProcess, within: float) -> None:
    """Wait until the worker, restarted by `supervise` should it exit, is ready and caught up."""
    deadline = time.monotonic() + within
    while True:
        ready = await worker.readyz() if worker.alive() else None
        if ready is not None and ready["status"] == "ok" and not ready["lag_messages"]:
            return
        assert time.monotonic() < deadline, f"not ready within {within} s:\n{worker.log_tail()}"
        await asyncio.sleep(0.3)


async def test_broker_kill_and_cluster_restart_lose_nothing(
    three_nodes: KafkaCluster,
    stream: Stream,
    names: dict[str, str],
    make_worker: Callable[..., WorkerProcess],
    report: Callable[[str], None],
) -> None:
    cluster = three_nodes
    bootstrap = cluster.bootstrap
    await ensure_topics(bootstrap, [TopicSpec(names["input"], PARTITIONS, replication=3)])
    worker = make_worker("worker", bootstrap)
    worker.start()
    await worker.wait_assigned()

    prefix = names["prefix"]
    changelog = f"{prefix}.{names['group']}.{names['input']}.changelog"
    own_topics = [changelog, f"{prefix}.kpi", f"{prefix}.deadletter", f"{prefix}.anomalies"]
    layout = await describe(bootstrap, [names["input"], *own_topics])
    factors = {topic: {len(p["replicas"]) for p in parts} for topic, parts in layout.items()}
    report(f"replication factors: {factors}")
    in_sync = await topic_setting(bootstrap, own_topics, "min.insync.replicas")
    assert in_sync == dict.fromkeys(own_topics, ("2", TOPIC_CONFIG)), in_sync
    victim = layout[changelog][0]["leader"]

    restarts: list[str] = []
    stop = asyncio.Event()
    supervisor = asyncio.create_task(supervise(worker, restarts, stop))
    async with StreamProducer(bootstrap, names["input"]) as producer:
        began = time.monotonic()
        sending = asyncio.create_task(producer.send(stream.messages, rate=RATE))

        await asyncio.sleep(BROKER_KILL_AT)
        cluster.kill(victim, signal.SIGKILL)
        report(
            f"node {victim} (leader of {changelog}[0]) SIGKILLed {time.monotonic() - began:.1f} s "
            f"into the stream, {len(producer.partitions)} messages produced"
        )
        await asyncio.sleep(BROKER_DOWN_S)
        cluster.start_node(victim)
        await cluster.wait_ready_async(90)
        report(f"node {victim} back {time.monotonic() - began:.1f} s into the stream")

        await asyncio.sleep(max(0.0, began + CLUSTER_RESTART_AT - time.monotonic()))
        assert not sending.done(), "the stream ended before the cluster restart"
        produced = len(producer.partitions)
        at = time.monotonic() - began
        stopped_in, killed, back_in = await restart_cluster(cluster)
        report(
            f"whole cluster restarted {at:.1f} s into the stream, {produced} messages "
            f"produced: SIGTERM to all, stopped in {stopped_in:.1f} s (SIGKILL after "
            f"{GRACE_S:.0f} s: nodes {killed or 'none'}), back {back_in:.1f} s later"
        )
        await sending
        await producer.send_to_partitions(stream.closers)
        report(
            f"{len(stream.messages)} messages in {time.monotonic() - began:.1f} s, "
            f"{producer.resent} sends retried"
        )
    await ready_under_supervision(worker, within=120)
    stop.set()
    await supervisor
    await worker.wait_ready()

    rows = await assert_final_kpis(bootstrap, names, stream.truth)
    report(f"worker restarts by the supervisor: {restarts or 'none'}")
    for recovery in worker.recoveries():
        report(
            f"lifetime {recovery.lifetime}: {len(recovery.partitions)} partitions assigned, "
            f"{recovery.records} changelog records replayed in {recovery.seconds:.2f} s"
        )
    report(f"{rows} KPI rows exact")
    assert worker.stop() == 0
    assert all(f == {3} for f in factors.values()), f"not replicated 3 times: {factors}"
