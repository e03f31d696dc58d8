"""Liveness and readiness as an orchestrator sees them: /readyz waits for assignment, recovery
and catching up; /healthz fails when the consume loop is stuck, instead of looking fine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from events import order
from kafka_helpers import eventually, produce

from streams.errors import ConfigError
from streams.settings import Settings
from streams.worker.worker import Worker


async def _probe(worker: Worker, path: str) -> tuple[int, dict[str, Any]]:
    url = worker.server.url.replace("/metrics", path)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_ready_once_caught_up_and_unhealthy_when_the_loop_is_stuck(
    make_settings: Callable[..., Settings],
    start_worker: Callable[[Settings], Awaitable[Worker]],
    input_topic: Callable[[int], Awaitable[str]],
    kafka_bootstrap: str,
    transactions: bool,
) -> None:
    topic = await input_topic(2)
    worker = await start_worker(make_settings(liveness_timeout_seconds=1.0, detection=False))
    await produce(kafka_bootstrap, topic, [order(f"o-{i}", "10:00:00", "10.00") for i in range(20)])

    async def ready() -> bool:
        return (await _probe(worker, "/readyz"))[0] == 200

    await eventually(ready, what="/readyz 200")
    _, body = await _probe(worker, "/readyz")
    assert body == {
        "status": "ok",
        "alive": True,
        "assigned": True,
        "recovered": True,
        "caught_up": True,
        "partitions": 2,
        "lag_messages": 0,
        # the embedded broker has no transactions; Apache Kafka has
        "guarantee": "exactly_once" if transactions else "at_least_once",
    }
    assert (await _probe(worker, "/healthz"))[0] == 200

    # The agent gets stuck on the next batch (as a deadlocked or hung handler would).
    release = asyncio.Event()
    original = worker._process

    async def stuck(*args: Any) -> Any:
        await release.wait()
        return await original(*args)

    worker._process = stuck  # type: ignore[method-assign]
    await produce(kafka_bootstrap, topic, [order("o-stuck", "10:00:01", "5.00")], partition=1)

    async def unhealthy() -> bool:
        return (await _probe(worker, "/healthz"))[0] == 503

    await eventually(unhealthy, within=20, what="/healthz 503")
    _, body = await _probe(worker, "/healthz")
    assert body["status"] == "failing"
    assert body["running"] is True
    assert body["loop_quiet_seconds"] >= 1.0
    assert (await _probe(worker, "/readyz"))[1]["alive"] is False
    release.set()  # it comes round again: alive
    await eventually(lambda: _ok(worker), what="/healthz 200 again")


async def _ok(worker: Worker) -> bool:
    return (await _probe(worker, "/healthz"))[0] == 200


async def test_exactly_once_is_required_only_where_the_broker_has_transactions(
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    kafka_bootstrap: str,
    transactions: bool,
) -> None:
    """`PULSE_PROCESSING_GUARANTEE=exactly_once` starts on a broker with transactions and
    refuses to start, naming the setting, on one without."""
    await input_topic(1)
    settings = make_settings(processing_guarantee="exactly_once", detection=False)
    worker = Worker(settings, kafka_bootstrap)
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    if transactions:
        await eventually(_assigned(worker), what="an exactly-once worker assigned")
        assert worker.delivery is not None
        assert worker.delivery.guarantee == "exactly_once"
        stop.set()
        await asyncio.wait_for(run, 30)
        return
    with pytest.raises(ConfigError, match="PULSE_PROCESSING_GUARANTEE=exactly_once"):
        await asyncio.wait_for(run, 60)


def _assigned(worker: Worker) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return worker.assigned.is_set()

    return check
