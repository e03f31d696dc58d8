"""With 1, 2 and 3 workers and the merge stage, every final company-wide row on `<prefix>.kpi`
equals the final row of a single worker (no merge stage) over the same events.

Twenty simulated minutes across a business day's end (the simulator's company: orders, refunds,
deliveries, invoices, ...) over six input partitions, keyed as the simulator keys them, are in
the topic once the workers share its partitions, then one closer per partition moves every
watermark past the next month's start plus the lateness, so that minutes, hours, days, the month
and the business day's end are all final.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from kafka_helpers import Record, eventually, produce_records

from streams.kafka.clients import new_consumer, topic_partitions
from streams.merge.stage import MergeStage
from streams.settings import Settings
from streams.tools.simulator import SimulationConfig, simulate
from streams.worker.worker import Worker

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


async def final_rows(bootstrap: str, topic: str) -> dict[Row, Value]:
    """The latest final record of each key on every partition of `topic` (read until idle)."""
    count = await topic_partitions(bootstrap, topic)
    consumer = new_consumer(bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: dict[Row, Value] = {}
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 1.5:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                idle_since = time.monotonic()
                for record in records:
                    body: dict[str, Any] = orjson.loads(record.value)
                    if body["final"]:
                        dims = ";".join(f"{k}={v}" for k, v in sorted(body["dimensions"].items()))
                        row = (body["kpi"], body["window"], body["window_start"], dims)
                        found[row] = (body["value"], body["numerator"], body["denominator"])
        return found
    finally:
        await consumer.stop()


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


@pytest.mark.parametrize("fleet_size", [1, 2, 3])
async def test_workers_and_the_merge_stage_equal_one_process(
    fleet_size: int,
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    topic = await input_topic(PARTITIONS)
    settings = make_settings(merge_stage=True, max_event_bytes=65536)

    stage = MergeStage(settings, kafka_bootstrap)
    stop = asyncio.Event()
    task = asyncio.create_task(stage.run(stop))
    try:
        await asyncio.wait_for(stage.ready.wait(), 60)
        fleet = [await start_worker(settings) for _ in range(fleet_size)]

        async def split() -> bool:
            return all(len(w.state.partitions) == PARTITIONS // fleet_size for w in fleet)

        await eventually(split, within=60, what="the partitions split evenly")
        # The reference: one worker without a merge stage, on its own group and prefix.
        alone = await start_worker(
            make_settings(
                topic_prefix=f"{settings.topic_prefix}-alone",
                consumer_group=f"{settings.consumer_group}-alone",
                max_event_bytes=65536,
            )
        )
        await produce_records(kafka_bootstrap, topic, stream())

        def has_month(rows: dict[Row, Value]) -> bool:
            return any(window == "1mo" for _, window, _, _ in rows)

        want = await settled(kafka_bootstrap, alone.settings.kpi_topic, has_month)
        assert has_month(want), f"the single worker made {len(want)} final rows, no month"
        got = await settled(kafka_bootstrap, settings.kpi_topic, lambda rows: rows == want)
        assert got == want, differences(got, want)
        assert len(want) > 500, "the comparison covered the stream, not a corner of it"
        windows = {window for _, window, _, _ in want}
        assert {"1m", "5m", "1h", "1d", "1mo"} <= windows, windows
        assert any(kpi == "order_cycle_time_seconds" for kpi, _, _, _ in want), "quantiles"
        shares = [sum(worker.state.processed.values()) for worker in fleet]
        assert all(shares), f"events processed per worker: {shares}"
        print(
            f"{fleet_size} worker(s), events processed {shares}: {len(want)} final rows equal; "
            f"{stage.partials} partials read"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
