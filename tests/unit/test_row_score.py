"""The row score (`streams.tools.row_score`) on rows whose score is worked out by hand."""

from __future__ import annotations

import math

import pytest

from streams.tools.row_score import A_FP, judge, merged, normalized, row_score, sigma

WINDOW = (100.0, 200.0)
# sigma(-1) = 2 / (1 + e^-5) - 1 and sigma(-0.5) = 2 / (1 + e^-2.5) - 1, to 6 places
AT_START = 0.986614
AT_MIDDLE = 0.848284


def rows(flagged: dict[float, float]) -> list[tuple[float, float]]:
    """31 rows at t = 0, 10, ..., 300, scored 0.1 except `flagged`; the first 4 (15%) are
    the probation."""
    return [(float(t), flagged.get(float(t), 0.1)) for t in range(0, 301, 10)]


def test_the_scaled_sigmoid_at_the_window_start_middle_and_end() -> None:
    assert sigma(-1.0) == pytest.approx(AT_START, abs=1e-6)
    assert sigma(-0.5) == pytest.approx(AT_MIDDLE, abs=1e-6)
    assert sigma(0.0) == 0.0
    assert sigma(0.5) == pytest.approx(-AT_MIDDLE, abs=1e-6)


def test_a_detection_at_the_window_start_is_perfect_and_later_ones_earn_less() -> None:
    at_start = judge(rows({100.0: 0.9}), [WINDOW])
    assert at_start.perfect == pytest.approx(AT_START, abs=1e-6)
    assert normalized([at_start], 0.5) == pytest.approx(100.0)
    middle = judge(rows({150.0: 0.9, 160.0: 0.9}), [WINDOW])  # the second counts nothing
    # (S - S_null) / (S_perfect - S_null) with S_null = -1
    assert normalized([middle], 0.5) == pytest.approx(
        100 * (AT_MIDDLE + 1) / (AT_START + 1), abs=1e-4
    )
    assert normalized([middle], 0.95) == 0.0  # nothing flagged: the null score


def test_false_detections_cost_a_fp_far_from_a_window_and_less_just_after_one() -> None:
    # t = 50: after the probation, before any window: the whole A_FP;
    # t = 250: half a window length after it: A_FP * sigma(0.5) in magnitude
    judged = judge(rows({50.0: 0.9, 100.0: 0.9, 250.0: 0.9}), [WINDOW])
    s = AT_START - A_FP - A_FP * AT_MIDDLE
    assert normalized([judged], 0.5) == pytest.approx(100 * (s + 1) / (AT_START + 1), abs=1e-4)
    in_probation = judge(rows({20.0: 0.9, 100.0: 0.9}), [WINDOW])
    assert normalized([in_probation], 0.5) == pytest.approx(100.0)


def test_a_missed_window_costs_one_and_the_best_threshold_is_searched() -> None:
    # one window found at its start by scores >= 0.6, a false detection at 0.55 before it
    found = judge(rows({60.0: 0.55, 100.0: 0.6}), [WINDOW])
    missed = judge(rows({}), [(230.0, 280.0)])
    files = [found, missed]
    # S_null = -2, S_perfect = 2 * sigma(-1)
    best = row_score(files)
    assert best.threshold == pytest.approx(0.56)  # the lowest that drops the 0.55
    assert best.best == pytest.approx(100 * (AT_START - 1 + 2) / (2 * AT_START + 2), abs=1e-4)
    assert best.at_half == pytest.approx(
        100 * (AT_START - A_FP - 1 + 2) / (2 * AT_START + 2), abs=1e-4
    )
    assert math.isclose(normalized(files, 1.0), 0.0, abs_tol=1e-9)


def test_overlapping_windows_are_one_anomaly() -> None:
    assert merged([(150.0, 300.0), (100.0, 200.0), (400.0, 500.0)]) == [
        (100.0, 300.0),
        (400.0, 500.0),
    ]
    # a row in the overlap's later part is inside (not a false detection), one window found
    judged = judge(rows({250.0: 0.9}), [(100.0, 200.0), (150.0, 300.0)])
    assert len(judged.windows) == 1
    assert normalized([judged], 0.5) > 0
    assert judged.outside == [(score, A_FP) for _, score in rows({})[4:10]]
