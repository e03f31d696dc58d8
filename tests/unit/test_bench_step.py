"""`python -m streams.tools.bench_step`: the worker's batch step over the bench's events, no
broker (speed is not judged: it reads every event and reports a positive CPU time per event)."""

from __future__ import annotations

import pytest

from streams.settings import Settings
from streams.tools.bench_step import main, measure, records


def test_every_bench_event_goes_through_the_batch_step() -> None:
    settings = Settings(detection=False, kafka_bootstrap="127.0.0.1:1", input_topics=("t",))
    by_tp = records(1500, settings)
    assert sum(len(held) for held in by_tp.values()) == 1500
    assert all(held for held in by_tp.values())  # every partition has some
    assert measure(by_tp, settings) > 0


def test_main_prints_each_repeat_and_the_minimum(capsys: pytest.CaptureFixture[str]) -> None:
    main(["800", "2", "on"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("batch step, 800 events, detection on: ")
    runs = [float(r) for r in line.split(": ")[1].split(" CPU")[0].split(", ")]
    assert len(runs) == 2
    assert line.endswith(f"(min {min(runs):.1f})")
