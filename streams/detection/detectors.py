"""Streaming anomaly detectors for one series: a score in [0, 1] and an expected band per point.

(Longer than most modules: the two methods and the detector that combines them share their
state and their scale; split apart, each would need the other's internals.)

`SeriesDetector` combines two complementary methods, both O(1) in time and memory per update:

- **Robust seasonal baseline** (`_Baseline`): Holt-Winters exponential smoothing of level, damped
  trend and multiplicative seasonality (slot of the day x day of the week), made robust (Gelper,
  Fried & Croux, "Robust forecasting with exponential and Holt-Winters smoothing", 2010): each
  update uses the residual clipped at `CLIP` scales, so the outliers it is meant to find barely
  move what it learned. The scale is learned separately above and below the forecast (skewed
  series such as sums of lognormal order values get a wider upper band) and per point, not per
  elapsed time. Three candidates run side by side: no seasonality, daily, daily + weekly; the
  period is detected from the data by choosing the candidate with the lowest robust forecast
  error over about a week, once it is eligible (two days; every weekday seen once). Smoothing of
  the level uses elapsed time, so gaps and irregular spacing are handled: a gap of k steps
  projects the trend k steps and weighs the new point as k steps would.
- **Change detector** (`_Cusum`, one per candidate): a two-sided CUSUM with forgetting over the
  standardized residuals. It catches slow drifts and small persistent shifts that stay inside
  the band point by point while the baseline follows them.

Score: `max(|z| / (2 Z), S / (2 H))` clipped to [0, 1], where z is the residual in scales divided
by the series' tail width (`streams.detection.tails`: 1 for Gaussian residuals, wider for heavy
tails, from peaks over threshold), Z the band width in scales and S the CUSUM statistic with
threshold H; 0.5 means "at the edge of the
band" or "at the CUSUM threshold". Every plausible candidate (eligible, forecasting within
`PLAUSIBLE_ERROR` of the chosen one) scores the point and the most forgiving one gives the score
and the band `[expected - Z scale_below, expected + Z scale_above]`.

A series that is mostly 0 is judged as a count (`streams.detection.counts`) instead; when it
turns busy with scales far too small for its new noise, the band starts again (`_relearn`).

`EwmaDetector` is the plain EWMA z-score baseline that `pulse evaluate` compares against.
Pure: stdlib only. Times are epoch seconds; `step` is the series' spacing in seconds.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal, Protocol

from streams.detection.counts import BAND_LOG10, CountModel
from streams.detection.tails import TailCalibration
from streams.errors import ContractViolation

Period = Literal["none", "daily", "weekly"]

DAY = 86_400.0
WEEK = 7 * DAY
Z_BAND = 3.0
"""Band half-width in scales: a point at the band edge scores 0.5."""
CLIP = 2.0
"""Huber clipping of the residual that updates the baseline, in scales."""
PLAUSIBLE_ERROR = 1.3
"""A candidate within this factor of the chosen one's forecast error may explain a point."""
SEASON_LEARN_VISITS = 3
"""Visits of a seasonal slot that learn unclipped."""
SCALE_CAP = 3.0
"""A residual updates the scale by at most this many scales (an outlier cannot blow it up)."""
OUTSIDE_SCALE_GAIN = 0.1
"""Points outside the band teach the scale at a tenth of the usual rate..."""
OUTSIDE_RATE_GAIN = 0.002
"""...unless points fall outside the band on that side often: a slow average over ~500 points
(a 12-point incident adds ~0.024); a side's first points are averaged instead, so a band
learned from three nearly equal first values (an NPS of 42.3, 41.7 and 42.9 whose later values
swing by 25 points) is found wrong within a few points..."""
WRONG_BAND_RATE = 0.25
"""...above this share (the Gaussian's is 0.13%; counted once the model is eligible: a seasonal
model that does not know its season yet misses by far), the band is wrong, not the points: they
teach at the full rate, uncapped. A scale learned too small (a p95 over a few deliveries a
minute, whose values jump between sketch bins) otherwise stays trapped: every point beyond it
was an outlier, capped at 3 scales and taught at a tenth, and the series scored 1.0 one point in
two."""
GAUSS_MAD = 1.2533
"""Standard deviation per mean absolute deviation of a normal distribution."""
REL_FLOOR = 0.01
"""The scale is at least 1% of the expected level: tinier moves are never anomalies."""
IN_BAND_Z = 0.9 * Z_BAND
"""The largest |z| of a value inside the band (a clipped lower edge keeps values inside)."""
CUSUM_K = 1.0
CUSUM_H = 6.0
CUSUM_FORGET = 0.9
WARMUP_POINTS = 24
"""Points before a series can alert (the baseline needs a few level time constants)."""
WARMUP_STEPS = 192
"""... and a span of this many steps, or three days if shorter."""
WARMUP_SPAN = 8 * 86_400.0
SPARSE_SHARE = 0.25
SPARSE_GAIN = 0.02
"""A never-negative series that is 0 in a quarter or more of its recent points (a few expenses an
hour) is judged as a count (`streams.detection.counts`): its scale says little, the chance of
the count it shows says what matters."""
ONSET_DECAY = 0.9
"""While a change holds, each further point of it scores this fraction of the one before."""
ACCEPT_POINTS = 12
"""A change that has held this many points in a row is the new normal: the level is moved to it."""
RELEARN_POINTS = ACCEPT_POINTS
"""Points a band learns from before it judges again, after its series left the sparse state."""
RELEARN_SPREAD = 10.0
"""... when its recent points spread over this many times its band's scale (`_band_too_narrow`)."""
GAUSS_MEDIAN_AD = 1.4826
"""A Gaussian's scale over its median absolute deviation (`GAUSS_MAD`: its mean one)."""
HOLD_SCORE = 0.25
"""A change holds while its points stay on its side at this score or more."""
PRECISION_RANGE = (1 / 16, 4.0)
"""A ratio's sample counts as 1/16 to 4 times the series' typical one (its scale 4x to 0.5x)."""
WEIGHT_GAIN = 0.02
"""Per point: the typical sample of a ratio is averaged over ~50 points."""


@dataclass(frozen=True, slots=True)
class Score:
    """What a detector says about one point."""

    score: float
    expected: float
    lower: float
    upper: float
    ready: bool
    """True once the series is learned (warm-up over): alerts may open."""
    z: float = 0.0
    """Signed residual in scales (positive: above expected)."""
    accepted: bool = False
    """True at the point where a change that held `ACCEPT_POINTS` points became the new level."""


class Detector(Protocol):
    def update(self, t: float, value: float, weight: float | None = None) -> Score:
        """`weight`: the number of events behind a ratio over counted events (None: not one)."""
        ...


@dataclass(frozen=True, slots=True)
class Tuning:
    """Smoothing gains per step (level, trend, scale) and per visit (season slots)."""

    level: float = 0.12
    seasonal_level: float = 0.08
    """Seasonal candidates move their level slowly: the season explains the hourly swings."""
    trend: float = 0.01
    damping: float = 0.97
    season_day: float = 0.12
    season_week: float = 0.08
    scale: float = 0.05
    magnitude: float = 0.01


def _gain(alpha: float, steps: float) -> float:
    """The weight of a point after `steps` steps of smoothing at `alpha` per step."""
    return 1.0 - float((1.0 - alpha) ** max(steps, 1.0))


@dataclass(slots=True)
class _Baseline:
    """One candidate: level + damped trend (+ slot-of-day profile) (+ day-of-week offset)."""

    period: Period
    step: float
    tuning: Tuning
    level: float = math.nan
    trend: float = 0.0
    day: list[float] = field(default_factory=list)
    day_seen: list[int] = field(default_factory=list)
    week: list[float] = field(default_factory=list)
    week_seen: list[int] = field(default_factory=list)
    above: float = 0.0
    below: float = 0.0
    error: float = 0.0
    magnitude: float = 0.0
    """The series' typical absolute value (slow average)."""
    outside_below: float = 0.0
    outside_above: float = 0.0
    """How often points fall outside the band below / above (slow averages)."""
    sides: tuple[int, int] = (0, 0)
    """Points seen below / above (their first points average the rates rather than smooth)."""
    counted: bool = False
    """A ratio over counted events (it has a sample): its noise follows the sample, not the
    level (`spread`)."""
    n: int = 0
    relearned: int = 0
    """`n` when the band last started again (`relearn`): its scales and forecast error average
    their first points since, as they did the series' first."""
    first: float = math.nan
    last: float = math.nan
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=ACCEPT_POINTS))
    """The last deseasonalized values: their median is the new level, if accepted."""

    def __post_init__(self) -> None:
        if self.period != "none" and self.step < DAY:
            self.day = [0.0] * self._day_slots
            self.day_seen = [0] * self._day_slots
        if self.period == "weekly":
            self.week = [0.0] * 7
            self.week_seen = [0] * 7

    @property
    def _day_slots(self) -> int:
        return max(1, round(DAY / max(self.step, 3600.0)))

    def _slots(self, t: float) -> tuple[int, int]:
        mid = t + self.step / 2
        day_slot = int((mid % DAY) / DAY * len(self.day)) if self.day else -1
        week_slot = int((mid // DAY + 3) % 7) if self.week else -1  # 1970-01-01 was a Thursday
        return day_slot, week_slot

    def eligible(self, t: float) -> bool:
        """Seen enough to be judged: two days for the daily profile, every day of the week
        once and one more day for the weekly one."""
        if self.n == 0:
            return False
        period = self.period
        if period == "none":
            return True
        return t - self.first >= (2 * DAY if period == "daily" else WEEK + DAY)

    def forecast(self, t: float, precision: float = 1.0) -> tuple[float, float, float]:
        """(expected, scale below, scale above) at `t`, before seeing its value (`precision`:
        its sample relative to the series' typical one, see `SeriesDetector.update`)."""
        return self._forecast(t, self._slots(t), precision)[:3]

    def _forecast(
        self, t: float, slots: tuple[int, int], precision: float
    ) -> tuple[float, float, float, float, float, float]:
        """`forecast`, and what it is made of: its spread, the base and the seasonal factor
        (`update` learns from them: computed once, they cost a third less)."""
        base = self._base(t)
        factor = self._factor(slots)
        expected = base * factor
        spread = self.spread(expected, precision)
        floor = REL_FLOOR * abs(expected) + 1e-9
        below, above = max(self.below * spread, floor), max(self.above * spread, floor)
        return expected, below, above, spread, base, factor

    def _base(self, t: float) -> float:
        """Level plus the damped trend projected to `t` (deseasonalized)."""
        steps = (t - self.last) / self.step if self.n else 1.0
        phi = self.tuning.damping
        damped = phi * (1 - float(phi ** max(steps, 0.0))) / (1 - phi)
        return self.level + self.trend * damped

    def _factor(self, slots: tuple[int, int]) -> float:
        """The seasonal factor at a time's `slots`: slot of the day times day of the week
        (multiplicative: a busy noon is busier in a busy week)."""
        day_slot, week_slot = slots
        factor = 1.0 + self.day[day_slot] if day_slot >= 0 else 1.0
        return factor * (1.0 + self.week[week_slot] if week_slot >= 0 else 1.0)

    def spread(self, expected: float, precision: float = 1.0) -> float:
        """How much wider than usual the noise is at this level: event-driven sums have a
        variance proportional to their rate, so the scale follows the square root of the
        expected level relative to the series' typical magnitude; a ratio over counted events
        has a variance inversely proportional to its sample (`precision`: the sample relative
        to the series' typical one), whatever its level. (Scaled by its level too, an NPS whose
        expectation followed a few low answers from 42 to 1 got a band a third as wide, and its
        next ordinary answers, at 43 and 60, paged.)"""
        if self.counted:
            return 1.0 / math.sqrt(precision)
        typical = self.magnitude + 1e-12
        relative = (abs(expected) + 0.1 * typical) / (1.1 * typical)
        return min(4.0, max(0.25, math.sqrt(relative))) / math.sqrt(precision)

    def update(
        self, t: float, value: float, precision: float = 1.0
    ) -> tuple[float, float, float, float]:
        """Learn `value` at `t`; return (residual, expected, scale below, scale above) of the
        forecast made before it. A point of low `precision` (a small sample) moves the level
        proportionally less."""
        tuning = self.tuning
        if self.n == 0:
            self.level, self.first, self.last, self.n = value, t, t, 1
            self.magnitude = abs(value)
            return 0.0, value, 0.0, 0.0
        slots = self._slots(t)
        expected, below, above, spread, base, factor = self._forecast(t, slots, precision)
        steps = max((t - self.last) / self.step, 1.0)
        residual = value - expected
        clipped = min(max(residual, -CLIP * below), CLIP * above) if self.n > 3 else residual
        self.n += 1
        warm = 1.0 / self.n  # the first points are averaged rather than smoothed
        alpha = tuning.level if self.period == "none" else tuning.seasonal_level
        level_gain = max(_gain(alpha, steps), warm) * min(1.0, precision)
        self.level = base + level_gain * clipped / factor
        self.recent.append(value / factor if abs(factor) > 1e-12 else value)
        eligible = self.eligible(t)
        if eligible:  # before the season is known, level moves are not a trend
            # A level correction after a gap of k steps is a slope of correction / k (Holt's
            # method for irregular spacing): a gappy series must not learn a k-fold trend.
            self.trend = (
                self.trend * tuning.damping**steps
                + _gain(tuning.trend, steps) * (self.level - base) / steps
            )
        self._learn_season(slots, expected, clipped, residual)
        self._learn_scale(steps, value, residual, (below, above), spread, eligible=eligible)
        self.last = t
        return residual, expected, below, above

    def accept(self) -> None:
        """Take the level the recent points held as the new normal (no trend towards it): the
        median of their deseasonalized values. (Adding the median of their residuals to the
        level counted twice what the level had already followed during the change: after a
        12-minute dip to 15k from 46k, a minute series expected 6.7k, and the return paged.)"""
        if self.recent:
            ordered = sorted(self.recent)
            self.level = ordered[len(ordered) // 2]
            self.recent.clear()
        self.trend = 0.0

    def relearn(self, level: float) -> None:
        """Start the band again, as a new series' from `level` (with its span, so eligible as
        before): when a sparse series turns busy, its scales, magnitude, outside shares, season
        and forecast error are those of lone events among empty windows (a minute of revenue
        at ~100 or 0, now ~20k). Learned out at the usual pace they left a band wrong for
        hours; relearned with the old season, a 5-minute COGS expected three times its value
        for an hour (the slot factors of its quiet days)."""
        self.level, self.trend = level, 0.0
        self.recent.clear()
        for offsets, seen in ((self.day, self.day_seen), (self.week, self.week_seen)):
            offsets[:] = [0.0] * len(offsets)
            seen[:] = [0] * len(seen)
        self.magnitude = abs(level)
        self.above = self.below = self.error = 0.0
        self.outside_below = self.outside_above = 0.0
        self.sides = (0, 0)
        self.relearned = self.n

    def _learn_season(
        self, slots: tuple[int, int], expected: float, clipped: float, residual: float
    ) -> None:
        """Multiplicative Holt-Winters factors (Winters 1960), each pulled towards what this
        point says it should be, from the clipped value; then renormalized to average 1."""
        if not self.day and not self.week:
            return
        level = self.level if abs(self.level) > 1e-12 else 1e-12
        day_slot, week_slot = slots
        day = 1.0 + self.day[day_slot] if day_slot >= 0 else 1.0
        week = 1.0 + self.week[week_slot] if week_slot >= 0 else 1.0
        for slot, offsets, seen, base_gain, other in (
            (day_slot, self.day, self.day_seen, self.tuning.season_day, week),
            (week_slot, self.week, self.week_seen, self.tuning.season_week, day),
        ):
            if slot < 0 or (offsets is self.week and self.day and min(self.day_seen) < 2):
                continue  # the day of the week is learned once the day's shape is known
            seen[slot] += 1
            # A slot's first visits learn from the whole value: clipping at a scale that does
            # not know the season yet would make the season take weeks to learn.
            observed = expected + (clipped if seen[slot] > SEASON_LEARN_VISITS else residual)
            target = _bounded(observed / (level * other) - 1.0)
            gain = max(base_gain, 1.0 / seen[slot])
            offsets[slot] += gain * (target - offsets[slot])
        for offsets, seen in ((self.day, self.day_seen), (self.week, self.week_seen)):
            if offsets and min(seen) > 0:  # a profile is normalized once every slot is known
                mean = sum(offsets) / len(offsets)
                norm = 1.0 + mean
                if norm > 0.1:
                    # `_bounded`, inlined: this runs over every slot at every point
                    offsets[:] = [min(3.0, max(-0.9, (1.0 + o) / norm - 1.0)) for o in offsets]
                    self.level *= norm
                    self.trend *= norm

    def _learn_scale(
        self,
        steps: float,
        value: float,
        residual: float,
        scales: tuple[float, float],
        spread: float,
        *,
        eligible: bool = True,
    ) -> None:
        """Learn the scales below and above from the residual, and the typical magnitude.
        `eligible`: the model has seen enough to be judged (before, a seasonal model that does
        not know its season yet misses by far, and that says nothing of its band)."""
        tuning = self.tuning
        below, above = scales
        n = self.n - self.relearned  # points since the scales (re)started
        scale_gain = max(tuning.scale, 1.0 / n)  # per point: noise does not grow in gaps
        outside = n > 3 and abs(residual) > Z_BAND * (below if residual < 0 else above)
        wrong = eligible and self._outside_rate(residual, outside=outside) > WRONG_BAND_RATE
        if outside and not wrong:
            scale_gain *= OUTSIDE_SCALE_GAIN  # an anomaly says little about the usual noise
        size = abs(residual) * GAUSS_MAD / spread
        self.magnitude += max(_gain(tuning.magnitude, steps), 1.0 / self.n) * (
            abs(value) - self.magnitude
        )
        if residual >= 0:
            cap = size if wrong or n <= 3 else SCALE_CAP * above / spread
            self.above += scale_gain * (min(size, cap) - self.above)
            if n <= 3:
                self.below = max(self.below, self.above)
        else:
            cap = size if wrong or n <= 3 else SCALE_CAP * below / spread
            self.below += scale_gain * (min(size, cap) - self.below)
            if n <= 3:
                self.above = max(self.above, self.below)
        scale = below if residual < 0 else above
        # Candidates are compared over about a week, so a weekly pattern counts when it shows.
        error_gain = max(1.0 - math.exp(-self.step / WEEK), 1.0 / n)
        self.error += error_gain * (min(abs(residual), SCALE_CAP * scale) - self.error)

    def _outside_rate(self, residual: float, *, outside: bool) -> float:
        """Count the point on its side's rate of points outside the band; return that rate."""
        hit = 1.0 if outside else 0.0
        below, above = self.sides
        if residual < 0:
            self.sides = (below + 1, above)
            self.outside_below += max(OUTSIDE_RATE_GAIN, 1.0 / (below + 1)) * (
                hit - self.outside_below
            )
            return self.outside_below
        self.sides = (below, above + 1)
        self.outside_above += max(OUTSIDE_RATE_GAIN, 1.0 / (above + 1)) * (hit - self.outside_above)
        return self.outside_above


def _bounded(offset: float) -> float:
    """A relative seasonal offset stays within [-0.9, 3] (a slot at 0.1x to 4x the level)."""
    return min(3.0, max(-0.9, offset))


@dataclass(slots=True)
class _Cusum:
    """Two-sided CUSUM with forgetting over standardized residuals."""

    up: float = 0.0
    down: float = 0.0

    def update(self, z: float) -> float:
        z = max(-2 * Z_BAND, min(2 * Z_BAND, z))
        self.up = max(0.0, CUSUM_FORGET * self.up + z - CUSUM_K)
        self.down = max(0.0, CUSUM_FORGET * self.down - z - CUSUM_K)
        return max(self.up, self.down)


def _candidates(step: float) -> tuple[Period, ...]:
    if step >= WEEK:
        return ("none",)
    if step >= DAY:
        return ("none", "weekly")
    return ("none", "daily", "weekly")


@dataclass(slots=True)
class SeriesDetector:
    """The combined detector of one series. `step` None: learned from the first spacings."""

    step: float | None = None
    tuning: Tuning = field(default_factory=Tuning)
    warmup: int = WARMUP_POINTS
    _models: list[_Baseline] = field(default_factory=list)
    _chosen: int = 0
    _cusums: list[_Cusum] = field(default_factory=list)
    _gaps: list[float] = field(default_factory=list)
    _last: float = math.nan
    _n: int = 0
    _pending: list[tuple[float, float]] = field(default_factory=list)
    _width: float = 1.0
    """The band's width in scales, for the series' own tails (`streams.detection.tails`)."""
    _tail: TailCalibration = field(default_factory=TailCalibration)
    _run: int = 0
    """Points in a row scoring >= 0.5 on the side `_side` (a change that holds)."""
    _side: int = 0
    _nonnegative: bool = True
    _zeros: float = 0.0
    """Recent share of points that are exactly 0."""
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=ACCEPT_POINTS))
    """The last values, as they came (a band that starts again starts from them)."""
    _relearning: int = 0
    """Points left before the band judges again after the series left the sparse state."""
    _counts: CountModel = field(init=False)
    _count_cusum: _Cusum = field(default_factory=_Cusum)
    _count_tail: TailCalibration = field(default_factory=TailCalibration)
    _weight: float = 0.0
    """The typical sample of a ratio over counted events (a slow average of `weight`)."""
    """The count model's own tails, as `_tail` for the band (in equivalent Gaussian scales)."""
    """Judges the series while it is sparse (`SPARSE_SHARE` of its points 0)."""

    def __post_init__(self) -> None:
        # Recordable before its first point (`streams.detection.state`): a counted ratio's
        # series exists while its first sample is pooled. Rebuilt with the models.
        self._counts = CountModel(self.step if self.step is not None else DAY)

    @property
    def period(self) -> Period:
        return self._models[self._chosen].period if self._models else "none"

    def update(self, t: float, value: float, weight: float | None = None) -> Score:
        """Score `value` at `t`, then learn it. `weight`: the number of events behind a ratio
        over counted events; its noise is inversely proportional to it, so the point's scale
        is the series' (learned at its typical sample) times sqrt(typical / weight), within
        `PRECISION_RANGE`: a small sample gets a wider band and moves the level less."""
        if not math.isfinite(value):
            raise ContractViolation(f"value must be finite, got {value!r}")
        if self._n and t <= self._last:
            raise ContractViolation(f"times must increase: {t} after {self._last}")
        if not self._models:
            if self.step is None:
                return self._learn_step(t, value)
            self._models = [_Baseline(p, self.step, self.tuning) for p in _candidates(self.step)]
            self._cusums = [_Cusum() for _ in self._models]
            self._counts = CountModel(self.step)
        self._n, self._last = self._n + 1, t
        precision = self._precision(weight)
        results = [model.update(t, value, precision) for model in self._models]
        if self._n <= 2:
            expected = results[self._chosen][1]
            self._choose(t)
            return Score(0.0, expected, expected, expected, ready=False)
        self._recent.append(value)
        sparse = self._learn_sparse(value)
        ready = self._ready(t) and self._relearning == 0
        self._relearning = max(0, self._relearning - 1)
        # Every plausible candidate (eligible, forecasting about as well as the chosen one)
        # scores the point; the most forgiving one explains it. An anomaly is a point no
        # plausible model expects: a Saturday that only the weekly profile knows is quiet is not.
        chosen = self._models[self._chosen]
        judged = [
            self._judge(i, value, result)
            for i, result in enumerate(results)
            if i == self._chosen
            or (
                self._models[i].eligible(t)
                and self._models[i].error <= PLAUSIBLE_ERROR * chosen.error
            )
        ]
        best = min(judged, key=lambda j: j[0].score)
        if ready:  # during warm-up the model itself is still wrong: that is not the tails
            self._tail.update(best[1])
            self._width = self._tail.width
        self._choose(t)
        score, side, holding = best[0], best[2], best[3]
        expected = self._counts.expected(t)
        judged_count = self._counts.update(t, value, judge=sparse)
        if sparse:
            score, side, holding = self._judge_count(expected, judged_count, ready=ready)
        value_score, accepted = self._onset(score, side, ready, holding)
        return Score(
            value_score, score.expected, score.lower, score.upper, ready, score.z, accepted
        )

    def _judge_count(
        self, expected: float, judged: tuple[float, float, float, float], *, ready: bool
    ) -> tuple[Score, int, float]:
        """The count model's score of a sparse series' point (`judged`: its count score,
        band and z), calibrated on its own tails, with its CUSUM; the side it points to and
        how much a change holds (as `_judge`)."""
        count, lower, upper, count_z = judged
        gauss = _gauss_z(count) * (1 if count_z >= 0 else -1)
        if ready:
            self._count_tail.update(gauss)
        width = self._count_tail.width
        if count > 0:
            count = _score_of_z(abs(gauss) / width)
        count_z /= width
        statistic = self._count_cusum.update(count_z)
        holding = min(1.0, max(count, statistic / (2 * CUSUM_H)))
        cc = self._count_cusum
        if not (count_z > CUSUM_K if cc.up >= cc.down else count_z < -CUSUM_K):
            statistic = 0.0
        count = min(1.0, max(count, statistic / (2 * CUSUM_H)))
        if count >= 0.5 and abs(count_z) * 2 * Z_BAND < statistic:
            side = 1 if cc.up >= cc.down else -1
        else:
            side = 1 if count_z >= 0 else -1
        return Score(count, expected, lower, upper, ready=False, z=count_z), side, holding

    def _learn_sparse(self, value: float) -> bool:
        """Learn the share of zeros; whether the point is judged as a count. A series that
        leaves the sparse state with a band far too narrow for it starts its band again."""
        was_sparse = self._is_sparse()
        self._zeros += max(SPARSE_GAIN, 1.0 / self._n) * ((value == 0) - self._zeros)
        self._nonnegative = self._nonnegative and value >= 0
        sparse = self._is_sparse()
        if was_sparse and not sparse and self._band_too_narrow():
            self._relearn()
        return sparse

    def _is_sparse(self) -> bool:
        """Never negative and 0 in `SPARSE_SHARE` or more of the recent points."""
        return self._nonnegative and self._zeros >= SPARSE_SHARE

    def _band_too_narrow(self) -> bool:
        """The last points spread over more than `RELEARN_SPREAD` times the chosen band's
        scale on either side (their MAD, as a Gaussian scale): a series whose sparse minutes
        taught it the scale of lone events is now busy (a 5-minute COGS left the sparse state
        with a scale of 2,800 above and 53 below, its MAD ~2,000). A series that only crosses
        `SPARSE_SHARE` keeps its band: its scale is its own."""
        if len(self._recent) < ACCEPT_POINTS:
            return False
        model = self._models[self._chosen]
        middle = statistics.median(self._recent)
        spread = statistics.median(abs(x - middle) for x in self._recent) * GAUSS_MEDIAN_AD
        scale = min(model.above, model.below) * model.spread(middle)
        return spread > RELEARN_SPREAD * scale

    def _relearn(self) -> None:
        """The series has left the sparse state with a band far too narrow for it: the band
        starts again from the level its recent points held (`_Baseline.relearn`), with the
        tails of a Gaussian (its sparse minutes' lone events taught it heavy ones), and judges
        after `RELEARN_POINTS` points. (Learned out at the usual pace, the band of a minute
        series that went from two quiet days to ~20k a minute reached 10^13 wide: its scales
        stayed a hundred times too small for ~200 points, and the raw residuals of both signs
        taught the tails an excess they never had.)"""
        level = statistics.median(self._recent)
        for model in self._models:
            model.relearn(level)
        for cusum in self._cusums:
            cusum.up = cusum.down = 0.0
        self._tail = TailCalibration()
        self._width = self._tail.width
        self._run = self._side = 0
        self._relearning = RELEARN_POINTS

    def _precision(self, weight: float | None) -> float:
        """This point's sample relative to the series' typical one (1 without a sample), then
        learn the typical sample."""
        if weight is None or weight <= 0:
            return 1.0
        for model in self._models:
            model.counted = True  # a ratio: its band follows its sample, not its level
        precision = 1.0
        if self._weight > 0:
            low, high = PRECISION_RANGE
            precision = min(high, max(low, weight / self._weight))
        self._weight += max(WEIGHT_GAIN, 1.0 / self._n) * (weight - self._weight)
        return precision

    def _onset(self, score: Score, side: int, ready: bool, holding: float) -> tuple[float, bool]:
        """Rank the onset of a change highest, and accept a change that holds.

        A point at >= 0.5 starts a change; it holds while the points stay on its side at >=
        `HOLD_SCORE` (the robust baseline follows a shift a little, so its later points score
        less than the first, but they are still the change). Its k-th point (k = 0 first) scores
        `ONSET_DECAY`**k of what it would alone, so the onset stands out and the score comes back
        down while the change holds. After `ACCEPT_POINTS` points the change is the new normal:
        every candidate's level moves to the median of its recent deseasonalized values, the
        CUSUMs restart, and the point says `accepted` (the alert lifecycle closes the alert as
        "new level accepted"). An hourly series accepts a new level after 12 hours, a 5-minute
        one after an hour.
        """
        holds = self._run > 0 and side == self._side and holding >= HOLD_SCORE
        if not (ready and (holds or score.score >= 0.5)):
            self._run = self._side = 0
            return score.score, False
        self._run = self._run + 1 if holds else 1
        self._side = side
        decayed = score.score * ONSET_DECAY ** (self._run - 1)
        if self._run < ACCEPT_POINTS:
            return decayed, False
        for model in self._models:
            model.accept()
        for cusum in (*self._cusums, self._count_cusum):
            cusum.up = cusum.down = 0.0
        self._run = self._side = 0
        return decayed, True

    def _judge(
        self, index: int, value: float, forecast: tuple[float, float, float, float]
    ) -> tuple[Score, float, int, float]:
        """The score of candidate `index` for this point, its raw standardized residual, and
        the side it points to (+1 above, -1 below: of the residual, or of the CUSUM when that
        gives the score)."""
        residual, expected, below, above = forecast
        width = self._width
        raw = residual / (below if residual < 0 else above)
        z = raw / width
        lower = expected - Z_BAND * width * below
        cusum = self._cusums[index]
        if self._nonnegative and lower <= 0:
            # A series that never went below 0 cannot fall below 0: its band stops at 0, and
            # when the band reaches 0 an empty window (0) is inside it and adds no evidence:
            # a sparse series' quiet minutes are normal.
            lower = 0.0
            if value == 0:
                z = max(z, -IN_BAND_Z)
                statistic = cusum.update(max(z, -CUSUM_K))
            else:
                statistic = cusum.update(z)
        else:
            statistic = cusum.update(z)
        # A change still holds while the CUSUM remembers it (for `_onset`), on its side.
        holding = min(1.0, max(abs(z) / (2 * Z_BAND), statistic / (2 * CUSUM_H)))
        if abs(z) / Z_BAND >= statistic / CUSUM_H:
            side = 1 if z >= 0 else -1
        else:
            side = 1 if cusum.up >= cusum.down else -1
        # The CUSUM scores a point only while the point pushes it (beyond K on its side): its
        # memory of a spike that is over must not hold an alert open for ten more points.
        if not (z > CUSUM_K if cusum.up >= cusum.down else z < -CUSUM_K):
            statistic = 0.0
        score = min(1.0, max(abs(z) / (2 * Z_BAND), statistic / (2 * CUSUM_H)))
        upper = expected + Z_BAND * width * above
        return Score(score, expected, lower, upper, ready=False, z=z), raw, side, holding

    def _ready(self, t: float) -> bool:
        """Warm-up: enough points, spanning enough time for the period to be found and judged
        (three days for hourly series; less for minute series, whose level follows the day)."""
        assert self.step is not None
        span = t - self._models[0].first
        return self._n > self.warmup and span >= min(WARMUP_SPAN, WARMUP_STEPS * self.step)

    def _choose(self, t: float) -> None:
        """Keep the simplest candidate unless a seasonal one forecasts clearly better."""
        best = 0
        for i, model in enumerate(self._models[1:], start=1):
            if model.eligible(t) and model.error < 0.9 * self._models[best].error:
                best = i
        self._chosen = best

    def _learn_step(self, t: float, value: float) -> Score:
        """Until the spacing is known (`learn_step` over the first gaps), only remember the
        points."""
        if self._n:
            self._gaps.append(t - self._last)
        self._n += 1
        self._last = t
        self._pending.append((t, value))
        if len(self._gaps) >= STEP_SAMPLE:
            self.step = learn_step(self._gaps)
            pending, self._pending, self._n = self._pending, [], 0
            scores = [self.update(pt, pv) for pt, pv in pending]
            return scores[-1]
        return Score(0.0, value, value, value, ready=False)


_NORMAL = NormalDist()


def _gauss_z(count_score: float) -> float:
    """The Gaussian z (one-sided) with the tail probability a count score stands for."""
    p = min(0.5, max(1e-300, 10 ** (-count_score * 2 * BAND_LOG10)))
    return _NORMAL.inv_cdf(1 - p) if p > 1e-15 else 8.0


def _score_of_z(z: float) -> float:
    """The count score of a one-sided Gaussian z (the inverse of `_gauss_z`)."""
    p = max(1e-300, 1 - _NORMAL.cdf(z))
    return min(1.0, max(0.0, -math.log10(p) / (2 * BAND_LOG10)))


STEP_SAMPLE = 16
"""Spacings observed before a detector without a declared step fixes it (`learn_step`)."""
_STEP_BUCKET = math.log(1.1)


def learn_step(gaps: list[float]) -> float:
    """The regular spacing behind `gaps` (seconds, > 0), robust to missing rows and jitter.

    A missing row makes a gap twice as long, so the median of the gaps overestimates the step of
    a gappy series (2-3x when most rows are missing). Instead: the shortest gap size (10% buckets
    on a log scale) that at least a fifth of the gaps have, refined as the median of the gaps
    within [0.7, 1.4] of it; without such a size (no regular spacing), the median gap.
    """
    buckets: dict[int, int] = {}
    for gap in gaps:
        key = round(math.log(gap) / _STEP_BUCKET)
        buckets[key] = buckets.get(key, 0) + 1
    common = [k for k, n in buckets.items() if n >= max(2.0, len(gaps) / 5)]
    ordered = sorted(gaps)
    if not common:
        return ordered[len(ordered) // 2]
    mode = math.exp(min(common) * _STEP_BUCKET)
    near = [g for g in ordered if 0.7 * mode <= g <= 1.4 * mode]
    return near[len(near) // 2]


@dataclass(slots=True)
class EwmaDetector:
    """The plain baseline: EWMA mean and variance, z-score, band at 3 standard deviations."""

    alpha: float = 0.1
    warmup: int = WARMUP_POINTS
    mean: float = math.nan
    var: float = 0.0
    n: int = 0

    def update(self, t: float, value: float, weight: float | None = None) -> Score:
        del t, weight  # the plain baseline: every point alike
        self.n += 1
        if self.n == 1:
            self.mean = value
            return Score(0.0, value, value, value, ready=False)
        std = math.sqrt(self.var) + REL_FLOOR * abs(self.mean) + 1e-9
        z = (value - self.mean) / std
        expected = self.mean
        diff = value - self.mean
        gain = max(self.alpha, 1.0 / self.n)
        self.mean += gain * diff
        self.var = (1 - gain) * (self.var + gain * diff * diff)
        return Score(
            min(1.0, abs(z) / 6.0),
            expected,
            expected - 3 * std,
            expected + 3 * std,
            ready=self.n > self.warmup,
            z=z,
        )
