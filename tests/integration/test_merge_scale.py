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
from collections.abc import Awaitable, Callable

import pytest
from kafka_helpers import eventually, produce_records
from merge_helpers import PARTITIONS, Row, Value, differences, settled, stream

from streams.merge.stage import MergeStage
from streams.settings import Settings
from streams.worker.worker import Worker


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
        # On a difference, say which side went through a rebalance (a consumer that missed its
        # heartbeats under load rejoins, recovers and publishes again).
        assert got == want, (
            f"{differences(got, want)}; rebalances: reference worker {alone.rebalances}, "
            f"fleet {[w.rebalances for w in fleet]}, merge stage {stage.rebalances}; "
            f"partials read {stage.partials}, dropped {stage.dropped}"
        )
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
