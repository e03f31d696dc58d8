"""The count model of sparse series (`streams.detection.counts`): what it learns."""

from __future__ import annotations

import random

from test_detectors import HOUR, MONDAY, poisson

from streams.detection.counts import CountModel


def test_a_rare_event_that_comes_in_threes_teaches_a_dispersion_index_well_above_one() -> None:
    """Events in clumps of three, a clump every 20 hours: the variance is 3 times the mean
    (index 3). Its variance is all in the rare clumps; averaged per point as a ratio capped at
    2 standard deviations, each clump counted as ~4 where it is 27 and the index stayed at 1.0
    (a clump then looked like three independent events: P(X >= 3) = 0.0005 at index 1, 0.017
    at index 3)."""
    for seed in range(4):
        rng = random.Random(seed)
        model = CountModel(HOUR)
        for i in range(24 * 42):
            model.update(MONDAY + i * HOUR, 3.0 * poisson(rng, 0.05), judge=True)
        assert 1.4 < model.dispersion < 4.5, seed


def test_a_sparse_poisson_series_keeps_an_index_near_one() -> None:
    for seed in range(4):
        rng = random.Random(seed)
        model = CountModel(HOUR)
        for i in range(24 * 42):
            model.update(MONDAY + i * HOUR, float(poisson(rng, 0.3)), judge=True)
        assert model.dispersion < 1.3, seed
