"""`python -m streams.tools.bench_detect`: the detector alone, and a digest that tells an exact
speed-up from a change of scores (speed is not judged)."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from streams.tools.bench_detect import KINDS, main, measure, series


def test_every_kind_is_a_series_the_detector_takes() -> None:
    runs = series(1)
    assert len(runs) == len(KINDS)
    for _, points in runs:
        times = [t for t, _, _ in points]
        assert all(b > a for a, b in pairwise(times))  # increasing
        assert all(math.isfinite(value) for _, value, _ in points)
    assert series(1) == runs  # the same points on every run


def test_the_digest_is_stable_and_changes_with_any_score() -> None:
    runs = series(1)
    digest, per_point, points = measure(runs)
    assert points == sum(len(pts) for _, pts in runs)
    assert per_point > 0
    assert measure(runs)[0] == digest
    # One value of one series, a millionth off: a detector that said anything different of
    # it (a score, a band, its state) must not pass for the same.
    step, points_of = runs[0]
    t, value, weight = points_of[100]
    nudged = [*points_of[:100], (t, value * (1 + 1e-6), weight), *points_of[101:]]
    assert measure([(step, nudged), *runs[1:]])[0] != digest


def test_main_prints_each_repeat_the_minimum_and_the_digest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["1", "2"])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"detector, {sum(len(p) for _, p in series(1))} points of 8 kinds x 1")
    runs = [float(r) for r in line.split("seeds: ")[1].split(" CPU")[0].split(", ")]
    assert len(runs) == 2
    assert f"(min {min(runs):.1f}); digest {measure(series(1))[0]}" in line
