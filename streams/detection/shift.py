"""A held shift of a series with spiky tails: the median of its last residuals (`ShiftTest`).

A series with heavy tails gets the band its tails need (`streams.detection.tails`): a request
latency whose one-in-a-hundred slow minutes are 2 to 20 times the usual has a band 2 to 4 times
wider than its body's noise, and its residuals are divided by that width before the point score
and the CUSUM. A shift of its body (the median 2.5x for three hours) then stays inside the band
point by point, the CUSUM's increments, divided by the same width, add up to less than its
threshold while the baseline follows the shift, and nothing pages.

The median of the last `SHIFT_POINTS` standardized residuals, in the body's scales (before the
tails' width), sees it: a slow point or two barely move it, so it needs no tail allowance; a
body that moved moves it. Of residuals that are independent with the body's scale, the median
of k has a standard error of `1.2533 / sqrt(k)` scales; in those units (`u`) it is, without a
shift, about a standard normal. Residuals that follow each other are more alike than that (a
baseline that lags, a season slot learned a little off): `u` is divided by
`sqrt((1 + rho) / (1 - rho))`, rho the lag-1 correlation read from how often two successive
residuals have the same sign (robust to the tails: `sin(pi (p - 1/2))` for Gaussian pairs).
What is left, `u` learns its own tails as a point's residual does (`TailCalibration`), and is
scored as a point's z: `|u| / width / (2 Z_BAND)`, 0.5 at the edge of its band.

It only speaks for a series whose band its tails widened (`SeriesDetector` asks it when the
width is above 1: otherwise the band is the body's, and a run beyond it already scores) and
whose peaks (residuals beyond `PEAK` scales) are **isolated**: in under `CLUSTERED` of them the
residual before was a peak on the same side (a slow-average share, starting at 1 and worth
`CLUSTER_PRIOR` peaks). The band of a road's speed or a server's CPU is wide for runs of
residuals (a rush hour its profile does not know yet, a load that wanders), not for lone spikes:
its runs are what the series does, and the wide band is right for them.

Pure: stdlib only. O(1) time and memory per point (a sort of `SHIFT_POINTS` numbers).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from streams.detection.baseline import GAUSS_MAD
from streams.detection.tails import TailCalibration, U

SHIFT_POINTS = 8
"""Residuals the median is taken over (40 minutes of a 5-minute series)."""
MEDIAN_SE = GAUSS_MAD
"""A sample median's standard error times sqrt(n), over the sample's standard deviation (sqrt(pi
/ 2), as a Gaussian's standard deviation over its mean absolute deviation)."""
PEAK = U
"""A residual beyond this many scales is a peak (the tails' threshold)."""
CLUSTERED = 0.25
"""The test speaks while under this share of peaks followed a peak on the same side..."""
CLUSTER_GAIN = 0.02
CLUSTER_PRIOR = 5
"""...a slow share (per peak, ~50 peaks), starting at 1 and worth this many peaks at first."""
SIGN_GAIN = 0.01
"""Per point: the share of successive residuals with the same sign, over ~100 points."""
SIGN_PRIOR = 10
RHO_MAX = 0.9
"""The lag-1 correlation is taken within [0, RHO_MAX] (a negative one would narrow the test)."""
SHIFT_EDGE = 1.5
"""The median must be this many body scales out (half the body's band): a median of 8 residuals
1.4 scales out is 3 standard errors from 0, and a wobble nobody pages for."""


@dataclass(slots=True)
class ShiftTest:
    """The last residuals of one candidate, in the body's scales, and what the test learned."""

    recent: deque[float] = field(default_factory=lambda: deque(maxlen=SHIFT_POINTS))
    tail: TailCalibration = field(default_factory=TailCalibration)
    """The tails of `u`."""
    clustered: float = 1.0
    """Share of peaks that followed a peak on the same side."""
    peaks: int = 0
    alike: float = 0.5
    """Share of successive residuals with the same sign."""
    pairs: int = 0

    def update(self, raw: float, judge: bool, learn: bool) -> float:
        """Learn the residual `raw` (in the body's scales); when `judge`, return the median of
        the last residuals in its standard errors, divided by its tails' width, signed: 0 while
        the peaks are clustered, the median is within `SHIFT_EDGE` or fewer than
        `SHIFT_POINTS` residuals were seen. `learn`: the series is past its warm-up, and `u`
        teaches its tails."""
        recent = self.recent
        if recent:
            before = recent[-1]
            if raw and before:
                self.pairs += 1
                gain = max(SIGN_GAIN, 1.0 / (self.pairs + SIGN_PRIOR))
                self.alike += gain * (((raw > 0) == (before > 0)) - self.alike)
            if raw > PEAK or raw < -PEAK:
                self.peaks += 1
                same = (before > PEAK) if raw > 0 else (before < -PEAK)
                gain = max(CLUSTER_GAIN, 1.0 / (self.peaks + CLUSTER_PRIOR))
                self.clustered += gain * (same - self.clustered)
        recent.append(raw)
        if not judge or len(recent) < SHIFT_POINTS:
            return 0.0
        ordered = sorted(recent)
        k = len(ordered)
        middle = (ordered[(k - 1) // 2] + ordered[k // 2]) / 2
        rho = min(RHO_MAX, max(0.0, math.sin(math.pi * (self.alike - 0.5))))
        u = middle * math.sqrt(k * (1 - rho) / (1 + rho)) / MEDIAN_SE
        if learn:
            self.tail.update(u)
        if self.clustered >= CLUSTERED or abs(middle) < SHIFT_EDGE:
            return 0.0
        return u / self.tail.width

    def clear(self) -> None:
        """Forget the last residuals (the level they were measured from moved)."""
        self.recent.clear()
