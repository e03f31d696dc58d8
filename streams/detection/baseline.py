"""One candidate forecaster of a series (`Baseline`): robust Holt-Winters with separate scales.

Level + damped trend (+ slot-of-day profile) (+ day-of-week offset), exponential smoothing made
robust (Gelper, Fried & Croux, "Robust forecasting with exponential and Holt-Winters smoothing",
2010): each update uses the residual clipped at `CLIP` scales, so the outliers it is meant to find
barely move what it learned. The scale is learned separately above and below the forecast (skewed
series such as sums of lognormal order values get a wider upper band) and per point, not per
elapsed time. Smoothing of the level uses elapsed time, so gaps and irregular spacing are
handled: a gap of k steps projects the trend k steps and weighs the new point as k steps would.

`streams.detection.detectors.SeriesDetector` runs three of them side by side (no seasonality,
daily, daily + weekly), chooses the period by their forecast errors, and scores points on their
bands. Pure: stdlib only. Times are epoch seconds; `step` is the series' spacing in seconds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

HOUR = 3600.0
DAY = 86_400.0
WEEK = 7 * DAY
Z_BAND = 3.0
"""Band half-width in scales: a point at the band edge scores 0.5."""
CLIP = 2.0
"""Huber clipping of the residual that updates the baseline, in scales."""
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
ACCEPT_POINTS = 12
"""A change that has held this many points in a row is the new normal: the level is moved to it."""

Period = Literal["none", "daily", "weekly"]


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


def gain(alpha: float, steps: float) -> float:
    """The weight of a point after `steps` steps of smoothing at `alpha` per step."""
    if steps <= 1.0:  # the usual case, exactly as below (x ** 1.0 is x)
        return 1.0 - (1.0 - alpha)
    return 1.0 - float((1.0 - alpha) ** steps)


@dataclass(slots=True)
class Baseline:
    """One candidate: level + damped trend (+ slot-of-day profile) (+ day-of-week offset)."""

    period: Period
    step: float
    tuning: Tuning
    level: float = math.nan
    trend: float = 0.0
    day: list[float] = field(default_factory=list)
    day_seen: list[int] = field(default_factory=list)
    profiles: int = 1
    """Daily profiles in `day`: 1, or 2 (weekdays', then weekends') for the weekly candidate
    of a series finer than hourly: a road's rush hours, an office's working hours are not a
    Saturday's, and a day-of-week factor only scales a weekday's shape. A profile's slot is an
    hour, so a 5-minute series visits each weekend slot 24 times a weekend, an hourly one
    twice: too few to learn a weekend's shape from without the weekly candidate forgiving
    noise (it delayed the page of a +50% shift on a Sunday by two hours). State written
    before there were two reads as 1."""
    new_kind: bool = False
    """At the last point's hour, a candidate with a weekday and a weekend profile is in the first
    day of that kind after a whole day of the other: what the daily candidate learned so far is
    the other kind of day's shape (a road's first Saturday morning has no weekday rush hour)."""
    both_kinds: bool = False
    """At the last point's hour, both profiles have seen a whole day (before the candidate is
    eligible, a week and a day in: its day-of-week factors are not learned yet)."""
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
            self.profiles = 2 if self.period == "weekly" and self.step < HOUR else 1
            self.day = [0.0] * self._day_slots * self.profiles
            self.day_seen = [0] * self._day_slots * self.profiles
        if self.period == "weekly":
            self.week = [0.0] * 7
            self.week_seen = [0] * 7

    @property
    def _day_slots(self) -> int:
        return max(1, round(DAY / max(self.step, HOUR)))

    def eligible(self, t: float) -> bool:
        """Seen enough to be judged: two days for the daily profile, every day of the week
        once and one more day for the weekly one."""
        if self.n == 0:
            return False
        period = self.period
        if period == "none":
            return True
        return t - self.first >= (2 * DAY if period == "daily" else WEEK + DAY)

    def _forecast(
        self, t: float, steps: float, precision: float
    ) -> tuple[float, float, float, float, float, float, int, int]:
        """(expected, scale below, scale above) at `t`, `steps` steps after the last point
        (before seeing its value; `precision`: its sample relative to the series' typical one,
        see `SeriesDetector.update`), and what it is made of: its spread, the base (level plus
        the damped trend projected to `t`, deseasonalized), the seasonal factor (slot of the day
        times day of the week, multiplicative: a busy noon is busier in a busy week) and the
        slots it was read from. `update` learns from them.

        This runs for every candidate of every series at every point, so it is one function,
        and `max(a, b)` / `min(a, b)` are written out as what they return (`b if b > a else a`,
        NaN kept where they keep it): the scores are those of the calls, to the bit."""
        phi = self.tuning.damping
        damped = phi * (1 - float(phi ** (0.0 if steps < 0.0 else steps))) / (1 - phi)
        base = self.level + self.trend * damped
        mid = t + self.step / 2
        day, week = self.day, self.week
        week_slot = day_slot = -1
        factor = 1.0
        if day:
            per_day = len(day) // self.profiles
            day_slot = int((mid % DAY) / DAY * per_day)
            if week:
                week_slot = int((mid // DAY + 3) % 7)  # 1970-01-01 was a Thursday
                if week_slot >= 5 and self.profiles == 2:  # Saturday, Sunday
                    day_slot += per_day
            factor = 1.0 + day[day_slot]
        elif week:
            week_slot = int((mid // DAY + 3) % 7)
        if week_slot >= 0:
            factor = factor * (1.0 + week[week_slot])
        expected = base * factor
        spread = self.spread(expected, precision)
        floor = REL_FLOOR * abs(expected) + 1e-9
        below = self.below * spread
        above = self.above * spread
        if floor > below:  # noqa: PLR1730 - per point; max() costs more
            below = floor
        if floor > above:  # noqa: PLR1730 - per point; max() costs more
            above = floor
        return expected, below, above, spread, base, factor, day_slot, week_slot

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
        relative = math.sqrt((abs(expected) + 0.1 * typical) / (1.1 * typical))
        relative = relative if relative > 0.25 else 0.25  # min(4, max(0.25, relative)), no calls
        return (relative if relative < 4.0 else 4.0) / math.sqrt(precision)

    def update(
        self, t: float, value: float, precision: float = 1.0
    ) -> tuple[float, float, float, float]:
        """Learn `value` at `t`; return (residual, expected, scale below, scale above) of the
        forecast made before it. A point of low `precision` (a small sample) moves the level
        proportionally less."""
        tuning = self.tuning
        n = self.n
        if n == 0:
            self.level, self.first, self.last, self.n = value, t, t, 1
            self.magnitude = abs(value)
            return 0.0, value, 0.0, 0.0
        steps = (t - self.last) / self.step
        expected, below, above, spread, base, factor, day_slot, week_slot = self._forecast(
            t, steps, precision
        )
        if steps < 1.0:  # noqa: PLR1730 - max(steps, 1.0) without its call, NaN kept as it keeps
            steps = 1.0
        residual = value - expected
        if n > 3:  # clipped at CLIP scales: min(max(residual, -CLIP below), CLIP above)
            low, high = -CLIP * below, CLIP * above
            clipped = low if low > residual else residual
            if high < clipped:  # noqa: PLR1730 - per point; min() costs more
                clipped = high
        else:
            clipped = residual
        n += 1
        self.n = n
        warm = 1.0 / n  # the first points are averaged rather than smoothed
        alpha = tuning.level if self.period == "none" else tuning.seasonal_level
        level_gain = gain(alpha, steps)
        if warm > level_gain:  # noqa: PLR1730 - per point; max() costs more
            level_gain = warm
        self.level = level_gain * (precision if precision < 1.0 else 1.0) * clipped / factor + base
        self.recent.append(value / factor if abs(factor) > 1e-12 else value)
        eligible = self.eligible(t)
        if eligible:  # before the season is known, level moves are not a trend
            # A level correction after a gap of k steps is a slope of correction / k (Holt's
            # method for irregular spacing): a gappy series must not learn a k-fold trend.
            self.trend = (
                self.trend * tuning.damping**steps
                + gain(tuning.trend, steps) * (self.level - base) / steps
            )
        if day_slot >= 0 or week_slot >= 0:
            self._learn_season(day_slot, week_slot, expected, clipped, residual)
        if self.profiles == 2:
            if not eligible:
                self._kinds_of_day(day_slot)
            elif self.new_kind or self.both_kinds:  # it has seen both kinds at every hour
                self.new_kind = self.both_kinds = False
        self._learn_scale(steps, value, residual, below, above, spread=spread, eligible=eligible)
        self.last = t
        return residual, expected, below, above

    def _kinds_of_day(self, slot: int) -> None:
        """`new_kind` and `both_kinds` at the hour of `slot` (of a weekday and a weekend
        profile, in that order), the point's visit counted."""
        seen = self.day_seen
        half = len(seen) // 2
        here = seen[slot]
        other = seen[slot - half] if slot >= half else seen[slot + half]
        visits = HOUR / self.step  # points of an hour in one day
        self.new_kind = here <= visits <= other
        self.both_kinds = here > visits and other > visits

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
        self, day_slot: int, week_slot: int, expected: float, clipped: float, residual: float
    ) -> None:
        """Multiplicative Holt-Winters factors (Winters 1960), each pulled towards what this
        point says it should be, from the clipped value; then renormalized to average 1."""
        level = self.level if abs(self.level) > 1e-12 else 1e-12
        day_offsets, week_offsets = self.day, self.week
        day = 1.0 + day_offsets[day_slot] if day_slot >= 0 else 1.0
        week = 1.0 + week_offsets[week_slot] if week_slot >= 0 else 1.0
        if day_slot >= 0:
            self._learn_slot(day_offsets, self.day_seen, day_slot, self.tuning.season_day,
                             (expected, clipped, residual, level * week))  # fmt: skip
        # The day of the week is learned once the day's shape is known.
        if week_slot >= 0 and not (day_offsets and min(self.day_seen) < 2):
            self._learn_slot(week_offsets, self.week_seen, week_slot, self.tuning.season_week,
                             (expected, clipped, residual, level * day))  # fmt: skip
        for offsets, seen in ((day_offsets, self.day_seen), (week_offsets, self.week_seen)):
            if offsets and 0 not in seen:  # a profile is normalized once every slot is known
                mean = sum(offsets) / len(offsets)
                norm = 1.0 + mean
                if norm > 0.1:
                    # kept within [-0.9, 3] without calls (min and max per slot were a sixth of
                    # the detector's time): this runs over every slot at every point
                    offsets[:] = [
                        (x if x <= 3.0 else 3.0) if (x := (1.0 + o) / norm - 1.0) >= -0.9 else -0.9
                        for o in offsets
                    ]
                    self.level *= norm
                    self.trend *= norm

    @staticmethod
    def _learn_slot(
        offsets: list[float],
        seen: list[int],
        slot: int,
        base_gain: float,
        point: tuple[float, float, float, float],
    ) -> None:
        """Count a visit of `slot` and pull its offset towards what the point (`expected`, its
        `clipped` and raw `residual`, and the level times the other factor) says it is. A
        slot's first visits learn from the whole value: clipping at a scale that does not know
        the season yet would make the season take weeks to learn. An offset stays within
        [-0.9, 3] (a slot at 0.1x to 4x the level); that bound and `max` are written out as what
        they return (see `_forecast`)."""
        expected, clipped, residual, divisor = point
        seen[slot] += 1
        visits = seen[slot]
        target = (expected + (clipped if visits > SEASON_LEARN_VISITS else residual)) / divisor
        target -= 1.0
        target = target if target > -0.9 else -0.9
        target = target if target < 3.0 else 3.0
        slot_gain = 1.0 / visits
        if not slot_gain > base_gain:
            slot_gain = base_gain
        offsets[slot] += slot_gain * (target - offsets[slot])

    def _learn_scale(
        self,
        steps: float,
        value: float,
        residual: float,
        below: float,
        above: float,
        *,
        spread: float,
        eligible: bool = True,
    ) -> None:
        """Learn the scales below and above from the residual, and the typical magnitude.
        `eligible`: the model has seen enough to be judged (before, a seasonal model that does
        not know its season yet misses by far, and that says nothing of its band). `max` and
        `min` are written out as what they return (see `_forecast`)."""
        tuning = self.tuning
        n = self.n - self.relearned  # points since the scales (re)started
        scale_gain = 1.0 / n  # per point: noise does not grow in gaps
        if not scale_gain > tuning.scale:
            scale_gain = tuning.scale
        size = abs(residual)
        outside = n > 3 and size > Z_BAND * (below if residual < 0 else above)
        wrong = eligible and self._outside_rate(residual, outside=outside) > WRONG_BAND_RATE
        if outside and not wrong:
            scale_gain *= OUTSIDE_SCALE_GAIN  # an anomaly says little about the usual noise
        deviation = size
        size = size * GAUSS_MAD / spread
        magnitude_gain = 1.0 / self.n
        learned = gain(tuning.magnitude, steps)
        if not magnitude_gain > learned:
            magnitude_gain = learned
        self.magnitude += magnitude_gain * (abs(value) - self.magnitude)
        if residual >= 0:
            cap = size if wrong or n <= 3 else SCALE_CAP * above / spread
            self.above += scale_gain * ((cap if cap < size else size) - self.above)
            if n <= 3 and self.above > self.below:
                self.below = self.above
        else:
            cap = size if wrong or n <= 3 else SCALE_CAP * below / spread
            self.below += scale_gain * ((cap if cap < size else size) - self.below)
            if n <= 3 and self.below > self.above:
                self.above = self.below
        scale = below if residual < 0 else above
        # Candidates are compared over about a week, so a weekly pattern counts when it shows.
        error_gain = 1.0 / n
        weekly = 1.0 - math.exp(-self.step / WEEK)
        if not error_gain > weekly:
            error_gain = weekly
        capped = SCALE_CAP * scale
        self.error += error_gain * ((capped if capped < deviation else deviation) - self.error)

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
