"""The shift test: the median of a candidate's last residuals, in the body's scales."""

from __future__ import annotations

import math

import pytest

from streams.detection.shift import SHIFT_POINTS, ShiftTest


def settled(**fields: float) -> ShiftTest:
    """A test whose sign share moves by 1% a point (as after a long history)."""
    test = ShiftTest(pairs=10**6)
    for name, value in fields.items():
        setattr(test, name, value)
    return test


def test_a_held_median_scores_in_its_standard_errors_corrected_for_alike_neighbours() -> None:
    """Eight residuals of +2 body scales, peaks isolated so far. Seven same-sign pairs move the
    share of alike neighbours from 0.5 to 1 - 0.5 x 0.99^7 = 0.53397, a lag-1 correlation of
    sin(pi x 0.03397) = 0.10651; the median's standard error is 1.2533 / sqrt(8) scales,
    times sqrt(1.10651 / 0.89349): u = 2 x sqrt(8 x 0.80749) / 1.2533 = 4.056."""
    assert SHIFT_POINTS == 8
    test = settled(clustered=0.0)
    got = [test.update(2.0, judge=True, learn=False) for _ in range(8)]
    assert got[:7] == [0.0] * 7  # fewer than eight residuals yet
    assert got[7] == pytest.approx(4.056, rel=1e-3)
    rho = math.sin(math.pi * (0.5 - 0.5 * 0.99**7))
    assert got[7] == pytest.approx(2 * math.sqrt(8 * (1 - rho) / (1 + rho)) / 1.2533, rel=1e-9)


def test_a_lone_slow_point_does_not_move_the_median() -> None:
    """One residual of 25 scales among seven small ones: the median is 0.1, no shift."""
    test = settled(clustered=0.0)
    for raw in (0.1, -0.2, 0.3, 25.0, 0.0, -0.1, 0.2):
        test.update(raw, judge=True, learn=False)
    assert test.update(0.1, judge=True, learn=False) == 0.0


def test_a_median_inside_half_the_body_band_is_no_shift() -> None:
    """A median of 1.4 scales is 3.2 standard errors out, but a wobble that small is not an
    incident: nothing below 1.5 scales scores."""
    test = settled(clustered=0.0)
    assert [test.update(1.4, judge=True, learn=False) for _ in range(8)][-1] == 0.0


def test_a_series_whose_peaks_come_in_runs_is_not_judged() -> None:
    """Peaks in runs (a rush hour the profile does not know yet): the share of peaks that
    followed a peak on the same side stays high, and a held median of 4 scales says nothing:
    such a series' band is wide for runs."""
    test = ShiftTest()
    for _ in range(20):
        for raw in (3.0, 3.5, 3.0, 0.1, -0.2, 0.3, 0.0, -0.1, 0.2, 0.1):
            test.update(raw, judge=False, learn=False)
    assert test.clustered > 0.5
    assert [test.update(4.0, judge=True, learn=False) for _ in range(8)][-1] == 0.0
    isolated = ShiftTest()
    for _ in range(20):
        for raw in (3.0, 0.1, -0.2, 0.3, 0.0, -0.1, 0.2, 0.1, -3.0, 0.2):
            isolated.update(raw, judge=False, learn=False)
    assert isolated.clustered < 0.25
    assert [isolated.update(4.0, judge=True, learn=False) for _ in range(8)][-1] > 3.0
