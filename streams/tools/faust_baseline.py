"""A Faust agent doing the worker's per-event work, for `pulse bench --with-faust`.

It decodes, validates and applies each event to the same core state as the worker, in memory,
with no table writes and no changelog, so it is an upper bound for a per-event Faust agent.
Measured beside the worker in the same run, it shows why the worker updates state in batches
outside Faust's stream machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import faust
from faust.types import StreamT

from streams.core import WorkerState, decode_event
from streams.errors import InvalidEvent
from streams.settings import Settings
from streams.worker.config import state_config


async def measure_faust_agent(
    settings: Settings, bootstrap: str, topic: str, partitions: int, events: int
) -> float:
    """Events/s of one Faust agent from its first event until `events` were handled."""
    for name in ("faust", "mode"):
        logging.getLogger(name).setLevel(logging.WARNING)
    app = faust.App(
        f"pulse-bench-faust-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        web_enabled=False,
        broker_session_timeout=10,
        topic_partitions=partitions,
        store="memory://",
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
    )
    source = app.topic(topic, value_serializer="raw", key_serializer="raw")
    state = WorkerState(state_config(settings))
    limits = settings.validation_limits
    seen = 0
    started = 0.0
    finished = asyncio.Event()

    async def handle(stream: StreamT[bytes]) -> None:
        nonlocal seen, started
        async for value in stream:
            if not seen:
                started = time.perf_counter()
            part = state.assign((topic, 0))
            with contextlib.suppress(InvalidEvent):  # dead letters are not the point here
                part.apply(decode_event(value, limits, time.time()))
            seen += 1
            if seen >= events:
                finished.set()

    app.agent(source, name="bench")(handle)
    await app.start()
    try:
        await asyncio.wait_for(finished.wait(), timeout=max(120.0, events / 1000))
        return events / (time.perf_counter() - started)
    finally:
        await app.stop()
