"""Peaks over threshold: the band's width for the series' own tails."""

from __future__ import annotations

import random

from streams.detection.alerts import AlertPolicy, Lifecycle
from streams.detection.tails import GAUSS_T, SLACK, TailCalibration


def test_gaussian_residuals_keep_their_band_and_heavy_tails_widen_it() -> None:
    """Gaussian |z| keep the width at 1 (their threshold stays within the slack of 3.05).
    Residuals that are Laplace-distributed with scale 1.5 (|z| exponential, mean 1.5: beyond
    2 in e^(-2/1.5) = 26% of points, mean excess 1.5) have a threshold of 2 + 1.5 ln(0.26 /
    0.0027) = 8.8: a width of 8.8 / (1.2 x 3.05) = 2.4."""
    rng = random.Random(3)
    gauss = TailCalibration()
    for _ in range(5000):
        gauss.update(rng.gauss(0, 1))
    assert gauss.width == 1.0
    assert abs(gauss.threshold - GAUSS_T) < 0.3 * GAUSS_T
    laplace = TailCalibration()
    for _ in range(5000):
        laplace.update(rng.expovariate(1 / 1.5) * rng.choice((-1, 1)))
    expected = 8.8 / (SLACK * GAUSS_T)
    assert abs(laplace.width - expected) < 0.2 * expected, laplace


def test_a_run_beyond_the_tail_does_not_teach_it() -> None:
    """A level shift: 50 residuals of +20 in a row. Only the first counts as a peak; the width
    stays what the Gaussian residuals before it taught."""
    rng = random.Random(4)
    tail = TailCalibration()
    for _ in range(500):
        tail.update(rng.gauss(0, 1))
    before = tail.width
    for _ in range(50):
        tail.update(20.0)
    assert tail.width - before < 0.5


def test_anomalous_points_a_gap_apart_do_not_open_an_alert() -> None:
    """Two anomalous points open an alert only when they are adjacent window instances."""
    life = Lifecycle(AlertPolicy())
    assert life.step(0, 0.9, ready=True) is None  # pending
    assert life.step(17, 0.9, ready=True, contiguous=False) is None  # after a gap: starts again
    opened = life.step(18, 0.9, ready=True)
    assert opened is not None
    assert opened.state == "opened"
    assert opened.started_at == 17
