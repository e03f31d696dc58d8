"""Detectors on synthetic series with known anomalies, and on clean seasonal series."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from streams.core.detectors import DAY, EwmaDetector, Score, SeriesDetector

HOUR = 3600.0
MONDAY = 1_767_571_200.0  # 2026-01-05T00:00:00Z


def orders_per_hour(t: float, rng: random.Random, mean: float = 200.0) -> float:
    """Revenue of an hour: a Poisson number of lognormal orders, with the simulator's daily
    shape (x0.35 at midnight, x1.65 at noon) and quieter weekends (x0.75)."""
    phase = 2 * math.pi * (t % DAY) / DAY
    weekend = ((t // DAY + 3) % 7) in (5, 6)
    rate = mean * (1 - 0.65 * math.cos(phase)) * (0.75 if weekend else 1.1)
    count = max(0, round(rng.gauss(rate, math.sqrt(rate))))
    return sum(60 * math.exp(rng.gauss(-0.125, 0.5)) for _ in range(count))


def run(
    detector: SeriesDetector | EwmaDetector,
    points: int,
    value: Callable[[int, float], float],
    step: float = HOUR,
) -> list[Score]:
    return [detector.update(MONDAY + i * step, value(i, MONDAY + i * step)) for i in range(points)]


def test_a_clean_seasonal_series_never_scores_anomalous_after_warm_up() -> None:
    rng = random.Random(3)
    scores = run(SeriesDetector(HOUR), 24 * 35, lambda i, t: orders_per_hour(t, rng))
    ready = [s for s in scores if s.ready]
    assert len(ready) > 24 * 30
    assert max(s.score for s in ready) < 0.5
    # the band holds the series: the z-scores have about unit spread
    zs = [s.z for s in ready]
    assert 0.6 < math.sqrt(sum(z * z for z in zs) / len(zs)) < 1.4


def test_the_daily_period_is_found_from_the_data() -> None:
    rng = random.Random(4)
    detector = SeriesDetector(HOUR)
    run(detector, 24 * 10, lambda i, t: orders_per_hour(t, rng))
    assert detector.period in {"daily", "weekly"}
    flat = SeriesDetector(HOUR)
    run(flat, 24 * 10, lambda i, t: 100 + rng.gauss(0, 5))
    assert flat.period == "none"


@pytest.mark.parametrize(
    ("name", "change", "start", "length"),
    [
        ("dip", lambda k: 0.4, 24 * 20 + 10, 3),
        ("spike", lambda k: 2.5, 24 * 20 + 10, 2),
        ("level shift", lambda k: 1.5, 24 * 20 + 10, 48),
        ("slow drift", lambda k: 1 - 0.6 * k / 12, 24 * 20 + 8, 12),
    ],
)
def test_known_anomalies_are_found_within_a_few_points(
    name: str, change: Callable[[int], float], start: int, length: int
) -> None:
    rng = random.Random(5)

    def value(i: int, t: float) -> float:
        v = orders_per_hour(t, rng)
        return v * change(i - start) if start <= i < start + length else v

    scores = run(SeriesDetector(HOUR), start + length + 24, value)
    flagged = [i for i, s in enumerate(scores) if s.ready and s.score >= 0.5]
    assert flagged, name
    assert start <= flagged[0] <= start + max(2, length - 1), (name, flagged[:5])
    assert all(i >= start for i in flagged), (name, flagged[:5])


def test_an_outlier_barely_moves_what_was_learned() -> None:
    rng = random.Random(6)
    detector = SeriesDetector(HOUR)
    run(detector, 24 * 7, lambda i, t: 1000 + rng.gauss(0, 20))
    before = detector.update(MONDAY + 24 * 7 * HOUR, 1000.0).expected
    after = detector.update(MONDAY + (24 * 7 + 1) * HOUR, 50_000.0)
    assert after.score == 1.0
    nxt = detector.update(MONDAY + (24 * 7 + 2) * HOUR, 1000.0)
    assert abs(nxt.expected - before) < 0.1 * before  # Huber clipping held the level


def test_gaps_and_irregular_spacing_are_handled() -> None:
    rng = random.Random(7)
    detector = SeriesDetector(300.0)
    t = MONDAY
    scores = []
    for i in range(2000):
        t += 300 * (1 + rng.random() * 0.2) + (7200 if i == 1000 else 0)  # a 2-hour hole
        scores.append(detector.update(t, 50 + rng.gauss(0, 2)))
    assert all(0.0 <= s.score <= 1.0 for s in scores)
    assert max(s.score for s in scores[1001:1010]) < 0.5  # a gap is not an anomaly


def test_the_spacing_is_learned_when_not_declared() -> None:
    detector = SeriesDetector()
    for i in range(20):
        detector.update(MONDAY + i * 900.0, 10.0 + (i % 3))
    assert detector.step == 900.0


def test_bad_input_is_refused() -> None:
    detector = SeriesDetector(60.0)
    detector.update(MONDAY, 1.0)
    with pytest.raises(ValueError, match="increase"):
        detector.update(MONDAY, 1.0)
    with pytest.raises(ValueError, match="finite"):
        detector.update(MONDAY + 60, math.nan)


def test_the_ewma_baseline_misses_a_dip_the_seasonal_detector_finds() -> None:
    """At night the EWMA's band spans the whole daily swing; the seasonal baseline's does not."""
    rng = random.Random(8)
    start = 24 * 20 + 1  # 01:00, the quiet hours

    def value(i: int, t: float) -> float:
        v = orders_per_hour(t, rng)
        return v * 0.3 if start <= i < start + 3 else v

    ours = run(SeriesDetector(HOUR), start + 4, value)
    rng = random.Random(8)
    ewma = run(EwmaDetector(), start + 4, value)
    assert max(s.score for s in ours[start:]) >= 0.5
    assert max(s.score for s in ewma[start:]) < 0.5
