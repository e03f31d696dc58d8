"""kill -9 of the merge stage (`pulse merge`, a process of its own) at a seeded random moment
while partials stream in, then a restart, while a worker stops and another takes its place:
every final company-wide row still equals a single worker's over the same events. The time from
restart to ready (tables recovered) and to the first company-wide record published again is
measured and printed.

The stage commits the offset of a partial only after the changelog records of its table writes
are flushed (Faust, at least once); after a kill it reads again the partials since that offset,
and since a partial replaces the one before it of its window and source partition, and progress
only rises, reading one again changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from kafka_helpers import WorkerPool, eventually, produce_records, read_until, scrape, value_of
from merge_helpers import PARTITIONS, StageProcess, differences, settled, stream

from streams.settings import Settings

SEED = int(os.environ.get("KPI_PULSE_KILL_SEED", "20261206"))
"""Chooses the moment of the kill (set KPI_PULSE_KILL_SEED to try others)."""


async def test_a_merge_stage_killed_mid_stream_and_restarted_publishes_the_same_rows(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    workers: WorkerPool,
    tmp_path: Path,
) -> None:
    topic = await input_topic(PARTITIONS)
    settings = make_settings(merge_stage=True, max_event_bytes=65536)
    stage = StageProcess(settings, tmp_path / "merge.log")
    try:
        stage.start()
        await stage.ready()
        fleet = [await workers.start(settings) for _ in range(2)]

        async def split() -> bool:
            return all(len(w.state.partitions) == PARTITIONS // 2 for w in fleet)

        await eventually(split, within=60, what="the partitions split evenly")
        alone = await workers.start(
            make_settings(
                topic_prefix=f"{settings.topic_prefix}-alone",
                consumer_group=f"{settings.consumer_group}-alone",
                max_event_bytes=65536,
            )
        )

        # The stream in ten slices half a second apart: partials keep coming for ~5 s.
        events = stream()
        step = len(events) // 10 + 1

        async def publish() -> None:
            for start in range(0, len(events), step):
                await produce_records(kafka_bootstrap, topic, events[start : start + step])
                await asyncio.sleep(0.5)

        producing = asyncio.create_task(publish())
        kill_after = random.Random(SEED).uniform(1.0, 4.0)
        await asyncio.sleep(kill_after)
        samples = await scrape(f"http://127.0.0.1:{stage.port}/metrics")
        before = value_of(samples, "pulse_merge_partials_total")
        assert stage.signal(signal.SIGKILL) == -signal.SIGKILL
        restarted_at = time.time()
        stage.start()

        async def churn() -> None:
            """Meanwhile a worker stops and another takes its place: its partitions move to the
            other worker and back, each new owner republishing the partials of windows still
            open (they must replace, never add)."""
            await workers.stop(fleet[1])
            fleet[1] = await workers.start(settings)
            await eventually(split, within=60, what="the partitions split evenly again")

        churning = asyncio.create_task(churn())
        ready_s = await stage.ready()

        def published_again(got: list) -> bool:
            return any(orjson.loads(r.value)["emitted_at"] >= restarted_at for r in got)

        await read_until(kafka_bootstrap, settings.kpi_topic, published_again, within=120)
        publishing_s = time.time() - restarted_at
        await producing
        await churning

        def has_month(rows: dict) -> bool:
            return any(window == "1mo" for _, window, _, _ in rows)

        want = await settled(kafka_bootstrap, alone.settings.kpi_topic, has_month)
        assert has_month(want), f"the single worker made {len(want)} final rows, no month"
        got = await settled(kafka_bootstrap, settings.kpi_topic, lambda rows: rows == want)
        assert got == want, differences(got, want)
        assert len(want) > 500
        samples = await scrape(f"http://127.0.0.1:{stage.port}/metrics")
        dropped = value_of(samples, "pulse_merge_partials_dropped_total")
        print(
            f"kill -9 after {kill_after:.2f} s (seed {SEED}), {before:.0f} partials read; "
            f"restart -> ready {ready_s:.2f} s, -> publishing again {publishing_s:.2f} s; "
            f"{len(want)} final rows equal; {dropped:.0f} republished partials of final windows "
            "dropped since the restart"
        )
        # A clean stop (SIGTERM) exits 0, with no crash in its log.
        assert stage.signal(signal.SIGTERM) == 0, stage.log()[-3000:]
        assert "Crashed" not in stage.log()
        assert "Traceback" not in stage.log()
    finally:
        stage.stop()
