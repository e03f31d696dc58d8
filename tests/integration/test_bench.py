"""`pulse bench` runs end to end on the suite's broker and reports a ratio (speed is not judged)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streams.settings import Settings
from streams.tools.bench import run_bench
from streams.tools.bench_latency import measure_latency
from streams.tools.bench_merge import run_merge_bench
from streams.tools.bench_replay import run_replay_bench

pytestmark = pytest.mark.any_broker  # what is checked does not depend on the broker


async def test_bench_reports_both_paths_and_a_ratio(make_settings: Callable[..., Settings]) -> None:
    lines: list[str] = []
    ratio = await run_bench(make_settings(), 3000, 2, 1, say=lines.append)
    assert any(line.startswith("ceiling:") for line in lines)
    assert any(line.startswith("pipeline:") for line in lines)
    cost = next(line for line in lines if line.startswith("detection per closed window:"))
    assert float(cost.split()[4]) > 0  # us per KPI value fed: detection ran and was timed
    cpu = next(line for line in lines if line.startswith("cpu:")).split()
    ceiling_us, pipeline_us = float(cpu[2]), float(cpu[5])
    assert ceiling_us > 0  # us/event of the ceiling; 3000 events may all be read before the
    assert pipeline_us >= 0  # pipeline's clock starts (it starts once partitions are assigned)
    if pipeline_us >= 1:
        assert float(cpu[-1]) == pytest.approx(ceiling_us / pipeline_us, rel=0.1, abs=0.01)
    assert lines[-1] == f"ratio: {ratio:.2f}"
    assert ratio > 0


async def test_replay_bench_rebuilds_every_record_and_reports_a_ratio(
    make_settings: Callable[..., Settings],
) -> None:
    lines: list[str] = []
    ratio = await run_replay_bench(make_settings(), 2000, 1, lines.append)
    assert lines[0].startswith("replay bench: 2000 changelog records")
    assert lines[-1] == f"ratio: {ratio:.2f}"
    assert ratio > 0  # and the replay reached the last record's offset (asserted inside)


async def test_merge_bench_reports_partials_per_second_latency_and_a_ratio(
    make_settings: Callable[..., Settings],
) -> None:
    lines: list[str] = []
    ratio = await run_merge_bench(make_settings(), 3000, 2, lines.append, restore_pairs=20)
    assert any(line.startswith("latency:") for line in lines), lines
    assert any(line.startswith("restore:") and "week of hourly" in line for line in lines)
    assert any(line.startswith("merge:") for line in lines)
    assert lines[-1] == f"ratio: {ratio:.3f}"
    assert ratio > 0


async def test_latency_run_counts_every_event_its_child_publisher_sent(
    make_settings: Callable[..., Settings], kafka_bootstrap: str
) -> None:
    # The events come from a child process; the worker must consume every one of them, and
    # each event's delay is its own (a percentile of real, ordered, non-negative delays).
    felt = await measure_latency(make_settings(), kafka_bootstrap, rate=200, duration=3)
    assert 400 <= felt.events <= 800  # 200/s for 3 s, Poisson
    assert felt.offered == pytest.approx(felt.events / 3)
    p50, p90, p99 = felt.applied
    assert 0 <= p50 <= p90 <= p99 < 30  # applied within the run, not never
    assert felt.ready > 0
