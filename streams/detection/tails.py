"""How wide a series' band must be for its own tails: peaks over threshold on its residuals.

A fixed number of scales is right for a Gaussian series and wrong for a bursty one: a margin
that is 100% in most hours and falls to 50% in one hour of five, or an hourly revenue whose rate
swings by half from hour to hour, breaks a band of 3 scales every day. `TailCalibration` learns
the tail of the series' own standardized residuals |z| (z = residual / robust scale) the way
streaming extreme-value detectors do (peaks over threshold; Siffer et al., "Anomaly detection in
streams with extreme value theory", KDD 2017): how often |z| exceeds `U` = 2 scales (share
`phi`) and by how much on average when it does (mean excess `e`): an exponential tail, the
generalized Pareto distribution with shape 0. The tail probability of |z| = x > U is then
`phi * exp(-(x - U) / e)`, and the residual with tail probability `TAIL_P` is
`T = U + e * ln(phi / TAIL_P)`. The band's width in scales is `max(1, T / (1.2 T_gauss))`,
T_gauss the same for Gaussian residuals (phi = 0.0455, e = 0.373: T_gauss = 3.05; up to 1.2x
of it is estimation noise, not a heavier tail): a Gaussian series keeps its band, a
heavy-tailed one gets the band its tails need, so one score threshold means about the same tail
probability on both.

- Runs do not teach: a residual beyond T on the same side as the previous one continues a change
  (an incident, or a level shift), which must not teach the series to expect incidents.
- Both start at the Gaussian values, worth `PRIOR_POINTS` points (and `PRIOR_PEAKS` peaks), and
  then follow the series with gains `PHI_GAIN` per point and `EXCESS_GAIN` per peak: a tail
  learned within days of hourly points, forgotten as slowly.
Pure: stdlib only. O(1) time and memory per point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

U = 2.0
"""The threshold of the peaks, in scales."""
TAIL_P = 0.0027
"""Tail probability at the band's edge (a Gaussian's beyond 3 scales, both sides)."""
GAUSS_PHI = 0.0455
GAUSS_EXCESS = 0.373
"""Share of Gaussian |z| beyond 2, and their mean excess over 2."""
GAUSS_T = U + GAUSS_EXCESS * math.log(GAUSS_PHI / TAIL_P)
SLACK = 1.2
"""A tail up to this factor wider than a Gaussian's is taken as Gaussian (estimation noise: the
band of a clean series must not wobble with its last few peaks)."""
PHI_GAIN = 0.005
EXCESS_GAIN = 0.02
PRIOR_POINTS = 50
PRIOR_PEAKS = 5


@dataclass(slots=True)
class TailCalibration:
    phi: float = GAUSS_PHI
    excess: float = GAUSS_EXCESS
    n: int = 0
    peaks: int = 0
    beyond: int = 0
    """Side (+1 above, -1 below, 0 within) of the previous residual beyond the threshold."""

    @property
    def threshold(self) -> float:
        """|z| with tail probability `TAIL_P` (at least `U`)."""
        return U + self.excess * max(0.0, math.log(self.phi / TAIL_P))

    @property
    def width(self) -> float:
        """The band's width in scales, relative to a Gaussian series' (never below 1)."""
        return max(1.0, self.threshold / (SLACK * GAUSS_T))

    def update(self, z: float) -> None:
        """Learn the standardized residual `z` (unless it continues a run beyond the tail)."""
        size = abs(z)
        side = (1 if z > 0 else -1) if size > self.threshold else 0
        if side and side == self.beyond:
            return
        self.beyond = side
        self.n += 1
        peak = size > U
        self.phi += max(PHI_GAIN, 1.0 / (self.n + PRIOR_POINTS)) * (peak - self.phi)
        if peak:
            self.peaks += 1
            gain = max(EXCESS_GAIN, 1.0 / (self.peaks + PRIOR_PEAKS))
            self.excess += gain * ((size - U) - self.excess)
