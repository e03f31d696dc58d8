"""Detection on the company-wide series survives the merge stage's crashes and the workers'
scaling: kill -9 of `pulse merge` at two seeded-random moments, workers scaled 1 -> 3 -> 1
mid-stream, and the anomaly records on `<prefix>.anomalies` are those of an uninterrupted run of
the same detection over the same company-wide values (every field but `emitted_at`), so no
series warmed up again. The time from each restart to detecting again is printed.

The stream: five simulated hours of a flat day ending twenty minutes ago (the live watch skips
windows more than 400 steps old), with EMEA's order amounts five times their usual for fifteen
minutes in its fifth hour, after the minute series have warmed up. The uninterrupted run is
computed here, offline, by the stage's own detection (`StageDetection`) fed the stage's final
company-wide rows in window-end order.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka_helpers import WorkerPool, produce_records, scrape, value_of
from live import FLAT_DAY
from merge_helpers import PARTITIONS, StageProcess, markers, read_all, settled

from streams.core.kpi_values import KpiValue
from streams.kafka.anomalies import anomaly_message
from streams.merge.detection import StageDetection
from streams.settings import Settings
from streams.tools.incidents import Incident
from streams.tools.simulator import SimulationConfig, simulate
from streams.worker.config import state_config

# Kill -9 tests are fault tests, run on Apache Kafka (`make test-apache`, part of `make test`):
# once is enough for CI's 30 minutes. On the embedded broker, the stage's recovery after a stop
# or a kill is covered by test_merge_stage, test_merge_kill and test_faust_recovery_end.
pytestmark = pytest.mark.skipif(
    os.environ.get("KPI_PULSE_TEST_BROKER") != "apache"
    and not os.environ.get("PULSE_KAFKA_BOOTSTRAP"),
    reason="kill -9 of the merge stage runs on Apache Kafka (make test-apache)",
)

SEED = int(os.environ.get("KPI_PULSE_KILL_SEED", "20261206"))
MINUTE = 60
SPIKED = (("region", "emea"),)
"""Where the incident is. At 1.5 events/s a minute of EMEA revenue is ~1,600 with a band from
below zero to ~7,000, so no dip can leave it: a 70% dip once opened an alert only where noise
happened to (and at 02:30 UTC nowhere; CI failed). Five times the amounts opens EMEA revenue's
own minute series, offline with `StageDetection`, at every hour."""


def live_stream(now: float) -> tuple[list[Any], float]:
    """The records and the event time of the closers (every window before it is final)."""
    start = int(now // MINUTE * MINUTE) - 320 * MINUTE
    spike = Incident("spike", "revenue", start + 250 * MINUTE, start + 265 * MINUTE, 4.0, SPIKED)
    config = SimulationConfig(
        start=datetime.fromtimestamp(start, UTC),
        seed=SEED,
        rate=1.5,
        duration=300 * MINUTE,
        bad_ratio=0.0,
        daily_amplitude=FLAT_DAY,
        incidents=(spike,),
    )
    messages = [m for m in simulate(config) if b'"type":"fx_rate"' not in m.value]
    keyed = [(m.key, m.value, [], None) for m in messages]
    close = start + 318 * MINUTE
    before = datetime.fromtimestamp(start - MINUTE, UTC)
    records = [
        *markers("prelude", before),
        *keyed,
        *markers("closer", datetime.fromtimestamp(close, UTC)),
    ]
    return records, float(close)


def kpi_values(rows: list[Any]) -> list[KpiValue]:
    """The newest record of each key of a KPI topic, as values."""
    newest: dict[bytes, dict[str, Any]] = {}
    for record in rows:
        newest[record.key] = orjson.loads(record.value)

    def number(text: str | None) -> Decimal | None:
        return None if text is None else Decimal(text)

    return [
        KpiValue(
            body["kpi"],
            body["window"],
            body["window_start"],
            body["window_end"],
            tuple(body["dimensions"].items()),  # in the catalog's order, as published
            number(body["value"]),
            number(body["numerator"]),
            number(body["denominator"]),
        )
        for body in newest.values()
    ]


def comparable(body: dict[str, Any]) -> bytes:
    """A KPI alert's record without its send time (the workers' data_stale records: b"")."""
    if body["alert"] != "kpi_anomaly":
        return b""
    return orjson.dumps(
        {k: v for k, v in body.items() if k != "emitted_at"}, option=orjson.OPT_SORT_KEYS
    )


def differing(got: set[bytes], want: set[bytes]) -> list[tuple[str, object, object]]:
    """The fields that differ between records of the same series, instance and state."""

    def key(body: dict[str, Any]) -> tuple[object, ...]:
        return (body["kpi"], str(body["dimensions"]), body["window_start"], body["state"])

    wanted = {key(b): b for b in map(orjson.loads, want)}
    return [
        (f"{name} of {key(body)}", body[name], wanted[key(body)][name])
        for body in map(orjson.loads, got)
        if key(body) in wanted
        for name in body
        if body[name] != wanted[key(body)][name]
    ]


async def uninterrupted(
    bootstrap: str, settings: Settings, kpi_topic: str, close: float
) -> set[bytes]:
    """The KPI alert records of the stage's detection, uninterrupted, over the final rows on
    `kpi_topic`, fed in window-end order (the rows themselves equal a single worker's: exact for
    money and counts, quantiles within the sketch's accuracy; test_merge_kill.py)."""

    last = int(close) - 18 * MINUTE - MINUTE  # the stream's last minute

    def closed(rows: dict[Any, Any]) -> bool:
        return any(window == "1m" and start >= last for _, window, start, _ in rows)

    await settled(bootstrap, kpi_topic, closed)
    finals = [r for r in await read_all(bootstrap, kpi_topic) if orjson.loads(r.value)["final"]]
    values = [v for v in kpi_values(finals) if v.end <= close]
    reference = StageDetection(state_config(settings).catalog, settings.max_watched_series)
    now = time.time()
    expected: set[bytes] = set()
    for end in sorted({v.end for v in values}):
        group = [v for v in values if v.end == end]
        for event in reference.observe(group, {}, now):
            expected.add(comparable(anomaly_message(event, now).model_dump(mode="json")))
    return expected - {b""}


async def test_detection_on_merged_series_survives_kills_and_scaling(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    workers: WorkerPool,
    tmp_path: Path,
) -> None:
    topic = await input_topic(PARTITIONS)
    common = {"max_event_bytes": 65536, "source_idle_seconds": 10.0}
    settings = make_settings(merge_stage=True, **common)
    records, close = live_stream(time.time())
    stage = StageProcess(settings, tmp_path / "merge.log")
    rng = random.Random(SEED)
    restarts: list[float] = []
    began = time.monotonic()
    try:
        stage.start()
        await stage.ready()
        fleet = [await workers.start(settings)]

        async def kill_and_restart() -> None:
            assert stage.signal(signal.SIGKILL) == -signal.SIGKILL
            stage.start()
            restarts.append(await stage.ready())

        slices = 12
        step = len(records) // slices + 1
        kills = set(rng.sample(range(2, slices - 1), 2))
        for index, first in enumerate(range(0, len(records), step)):
            await produce_records(kafka_bootstrap, topic, records[first : first + step])
            if index == 3:  # scale out: the partitions move, every new owner republishes
                fleet += [await workers.start(settings) for _ in range(2)]
            if index == 8:  # and back in
                for worker in fleet[1:]:
                    await workers.stop(worker)
                fleet = fleet[:1]
            if index in kills:
                await asyncio.sleep(rng.uniform(0.0, 2.0))
                await kill_and_restart()

        produced = time.monotonic() - began
        expected = await uninterrupted(kafka_bootstrap, settings, settings.kpi_topic, close)
        opened = [orjson.loads(e) for e in expected if b'"state":"opened"' in e]
        assert any(
            (a["kpi"], a["window"], a["dimensions"]) == ("revenue", "1m", dict(SPIKED))
            for a in opened
        ), f"the spike opened no alert on its own series: the comparison would prove less; {opened}"

        deadline = time.monotonic() + 180
        while True:
            got_records = await read_all(kafka_bootstrap, settings.anomalies_topic)
            got = {comparable(orjson.loads(r.value)) for r in got_records} - {b""}
            if got >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(2.0)
        samples = await scrape(f"http://127.0.0.1:{stage.port}/metrics")
        mark = value_of(samples, "pulse_watermark_timestamp_seconds")
        assert got == expected, (
            f"{differing(got - expected, expected - got)}; "
            f"{len(got - expected)} extra, e.g. {sorted(got - expected)[:2]}; "
            f"{len(expected - got)} missing, e.g. {sorted(expected - got)[:2]}; "
            f"stage watermark {mark}, closers at {close}"
        )
        detecting = [
            line.split("detecting on ", 1)[1]
            for line in stage.log().splitlines()
            if "detecting on" in line
        ]
        print(
            f"kills at slices {sorted(kills)} (seed {SEED}); restart -> ready {restarts} s; "
            f"restart -> detecting on restored series: {detecting}; "
            f"{len(got)} anomaly records equal ({len(opened)} opened); "
            f"{len(got_records)} read (replays resend); stream in after {produced:.0f} s, "
            f"compared after {time.monotonic() - began:.0f} s"
        )
        assert stage.signal(signal.SIGTERM) == 0, stage.log()[-3000:]
    finally:
        stage.stop()
