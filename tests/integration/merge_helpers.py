"""Helpers of the merge stage's integration tests: a simulated stream over six partitions whose
windows all become final, the final rows of a KPI topic, and the merge stage as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import ConsumerRecord, TopicPartition
from kafka_helpers import Record

from streams.kafka.clients import new_consumer, topic_partitions
from streams.kafka.embedded import free_port
from streams.settings import Settings
from streams.tools.simulator import SimulationConfig, simulate

PARTITIONS = 6
CONFIG = SimulationConfig(
    # 22:50-23:10 UTC: Europe/Berlin's midnight (a business day's end) in the middle.
    start=datetime(2026, 3, 10, 22, 50, tzinfo=UTC),
    seed=20261206,
    rate=3.0,
    duration=20 * 60.0,
    bad_ratio=0.0,  # bad input has tests of its own; here every event counts
)
CLOSE_AT = datetime(2026, 4, 2, 0, 0, tzinfo=UTC)
"""After the next month's start plus a day: the month and every day of the stream are final."""

Row = tuple[str, str, int, str]
"""(kpi, window, window start, dimensions) of a KPI record."""
Value = tuple[str | None, str | None, str | None]
"""(value, numerator, denominator) as published."""


def stream() -> list[Record]:
    """A prelude event per partition (every partition has data from the start: a worker's
    watermark leaves out partitions without any, here as in a single worker), the simulator's
    messages less its fx_rate events (the static rates apply everywhere, so the order
    partitions are read in cannot change a conversion), keyed (partitioned by key), then a
    closer per partition."""
    messages = [m for m in simulate(CONFIG) if b'"type":"fx_rate"' not in m.value]
    keyed: list[Record] = [(m.key, m.value, [], None) for m in messages]
    before = CONFIG.start - timedelta(minutes=1)
    return [*markers("prelude", before), *keyed, *markers("closer", CLOSE_AT)]


def markers(name: str, at: datetime) -> list[Record]:
    """One counted event feeding no KPI per partition, at `at`."""
    return [
        (
            name.encode(),
            orjson.dumps(
                {
                    "event_id": f"{name}-{p}",
                    "type": "shipment_dispatched",
                    "occurred_at": at.isoformat(),
                    "source": "it",
                    "schema_version": 1,
                    "dimensions": {"business_unit": "retail", "region": "de"},
                    "order_id": "none",
                    "shipment_id": "none",
                }
            ),
            [],
            p,
        )
        for p in range(PARTITIONS)
    ]


async def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of every partition of `topic`, read until idle for 1.5 s."""
    count = await topic_partitions(bootstrap, topic)
    consumer = new_consumer(bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[ConsumerRecord[bytes, bytes]] = []
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 1.5:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                idle_since = time.monotonic()
                found += records
        return found
    finally:
        await consumer.stop()


async def final_rows(bootstrap: str, topic: str) -> dict[Row, Value]:
    """The latest final record of each key on every partition of `topic` (read until idle)."""
    found: dict[Row, Value] = {}
    for record in await read_all(bootstrap, topic):
        body: dict[str, Any] = orjson.loads(record.value)
        if body["final"]:
            dims = ";".join(f"{k}={v}" for k, v in sorted(body["dimensions"].items()))
            row = (body["kpi"], body["window"], body["window_start"], dims)
            found[row] = (body["value"], body["numerator"], body["denominator"])
    return found


async def settled(
    bootstrap: str, topic: str, enough: Callable[[dict[Row, Value]], bool], within: float = 180
) -> dict[Row, Value]:
    """Final rows of `topic` once `enough(rows)` holds and two reads in a row agree; what there
    is after `within` seconds otherwise."""
    deadline = time.monotonic() + within
    last: dict[Row, Value] | None = None
    while True:
        rows = await final_rows(bootstrap, topic)
        if (enough(rows) and rows == last) or time.monotonic() > deadline:
            return rows
        last = rows
        await asyncio.sleep(1.0)


def differences(got: dict[Row, Value], want: dict[Row, Value]) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(
        (row, got[row], want[row]) for row in set(got) & set(want) if got[row] != want[row]
    )
    return (
        f"{len(missing)} missing, e.g. {missing[:3]}; {len(extra)} extra, e.g. {extra[:3]}; "
        f"{len(wrong)} differ (got, want), e.g. {wrong[:3]}"
    )


def env_of(settings: Settings) -> dict[str, str]:
    """`settings` as the environment of a `pulse` process (the fields set, not the defaults)."""
    env = {}
    for name, value in settings.model_dump(exclude_defaults=True).items():
        if isinstance(value, tuple | list):
            text = ",".join(map(str, value))
        elif isinstance(value, bool):
            text = str(value).lower()
        else:
            text = str(value)
        env[f"PULSE_{name.upper()}"] = text
    return env


class StageProcess:
    """`pulse merge` (`python -m streams.cli merge`) with `settings`, killable by pid; every
    lifetime logs to `log_path`."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env |= env_of(self.settings) | {
            "PULSE_METRICS_PORT": str(self.port),
            "PULSE_LOG_LEVEL": "INFO",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "merge"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def signal(self, sig: int) -> int:
        """Send `sig` (to our process, by pid) and wait for it to exit; its exit code."""
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGKILL)

    async def ready(self, within: float = 60) -> float:
        """Seconds until `/readyz` answers 200."""
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            while time.monotonic() - started < within:
                assert self.process is not None
                assert self.process.poll() is None, f"exited: {self.log()[-2000:]}"
                try:
                    url = f"http://127.0.0.1:{self.port}/readyz"
                    async with session.get(url) as response:
                        if response.status == 200:
                            return time.monotonic() - started
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"not ready within {within} s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
