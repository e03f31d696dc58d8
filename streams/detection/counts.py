"""The count model for sparse series: how surprising a value is when most windows are empty.

A series that is 0 in more than a quarter of its recent points (a few expenses an hour, a rare
event type seen per minute) has no useful scale: its residuals are mostly "nothing happened" and
now and then one event (a robust level of such a series is 0). It is judged as a count instead:
the value in units of one event, `x`, against a negative binomial with a mean `m` learned here
(a slow average of the value times a slot-of-day profile; the profile is the daily seasonality)
and a variance `m * d`, where the dispersion index `d` >= 1 is learned from the series (1:
Poisson; bursts make it larger). A series with fewer zeros but still a few events a point is
judged both by its band and as a count (`detectors.LOW_COUNT_SHARE`).

- **Unit**: 1 while every value seen is a whole number and the typical nonzero value is at most
  `COUNT_UNIT_MAX` (counts); otherwise the typical nonzero value, a slow average (sums of
  amounts: a sparse window holds one event or a few).
- **Score**: the larger of two. The tail probability p of a value at least as far from `m`
  (P(X >= x) above the mean, P(X <= x) below), mapped as `-log10(p) / (2 * BAND_LOG10)` clipped
  to [0, 1]: 0.5 when p is the one-sided Gaussian tail at 3 scales (0.00135), the band edge of
  every other series, so one threshold means the same on both kinds. An empty window when few
  events are expected is likely and scores low; a spike of several events, or none when many
  are expected, scores high. And the series detector's CUSUM over `z = (x - m) / sqrt(m d)`:
  four hours at 4x a rate of one event an hour is no single surprising count, but it adds up.

Pure: stdlib only. Exact sums for counts up to `EXACT_UP_TO`, a normal approximation beyond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BAND_P = 0.00135
"""One-sided tail probability at the band edge (a Gaussian at 3 scales)."""
BAND_LOG10 = -math.log10(BAND_P)
DISPERSION_GAIN = 0.02
DISPERSION_CAP = 50.0
SPREAD_CLIP = 2.5
EXACT_UP_TO = 400
UNIT_GAIN = 0.05
COUNT_UNIT_MAX = 10.0
LEVEL_GAIN = 0.02
"""Per point: the rate of a sparse series is averaged over ~50 points."""
PROFILE_GAIN = 0.05
"""Per point in a slot of the day: a slot's mean value is averaged over ~20 points..."""
PROFILE_PRIOR = 5
"""...and a slot never seen starts at the mean of the slot before it, as if seen this often."""
PROFILE_POINTS = 1 / PROFILE_GAIN
"""The points a slot's mean holds, at most."""
PROFILE_EVENTS = 2.0
"""A slot's factor is its events over what the profile's mean expects of it, with this many more
at factor 1 (`CountModel._factor`)."""
PROFILE_FLOOR = 0.02
"""A slot of the day is at least 2% of the mean: an event there is rare, not impossible."""
DAY = 86_400.0


def _tail(x: float, m: float, d: float) -> float:
    """P(X >= x) if x > m else P(X <= x), X negative binomial with mean m, variance m * d."""
    k = math.floor(x) if x < m else math.ceil(x)
    if m + 6 * math.sqrt(m * d) > EXACT_UP_TO or k > EXACT_UP_TO:
        sd = math.sqrt(m * d)
        z = (abs(x - m) - 0.5) / sd if sd > 0 else math.inf
        return max(0.5 * math.erfc(max(z, 0.0) / math.sqrt(2)), 1e-300)
    if d <= 1.0 + 1e-9:  # Poisson
        pmf = math.exp(-m)

        def ratio(j: int) -> float:
            return m / j

    else:  # negative binomial: r successes, success probability 1 / d
        r, q = m / (d - 1.0), 1.0 - 1.0 / d
        pmf = math.exp(r * math.log(1.0 / d))

        def ratio(j: int) -> float:
            return (j - 1 + r) / j * q

    below = 0.0  # P(X <= k - 1) when above the mean, P(X <= k) below it
    last = k if x < m else k - 1
    for j in range(last + 1):
        if j:
            pmf *= ratio(j)
        below += pmf
    tail = below if x < m else 1.0 - below
    return min(1.0, max(tail, 1e-300))


@dataclass(slots=True)
class CountModel:
    """Learns a sparse series' rate and scores its values as counts (see the module docstring).

    `step`: the series' spacing in seconds; below a day the rate has a slot-of-day profile.
    """

    step: float
    unit: float = 0.0
    """The typical nonzero value (0 until one is seen); used once a value is not whole."""
    whole: bool = True
    """Every value seen so far is a whole number: the unit stays 1."""
    dispersion: float = 1.0
    spread_sum: float = 0.0
    mean_sum: float = 0.0
    """Slow averages of the squared distance from the mean and of the mean (in units): the
    dispersion index is their ratio."""
    level: float = 0.0
    """Mean value per point (deseasonalized), a slow average."""
    n: int = 0
    day_mean: list[float] = field(default_factory=list)
    """Per slot of the day: its mean value, a slow average..."""
    day_seen: list[int] = field(default_factory=list)
    """...over this many points (0: never seen)."""
    seen_total: float = 0.0
    seen_slots: int = 0
    """The sum of the slots' means and the number of slots seen: the profile's mean."""
    slot: int = -1
    """The slot of the day of the last point (-1: none yet)."""

    def __post_init__(self) -> None:
        self._profile()

    def _profile(self) -> None:
        """A flat profile: one slot per hour of the day below a day's step. (State from an
        older version, whose profile was an average of ratios to the level, starts here.)"""
        slots = round(DAY / max(self.step, 3600.0)) if self.step < DAY else 1
        self.day_mean = [0.0] * slots
        self.day_seen = [0] * slots
        self.seen_total, self.seen_slots, self.slot = 0.0, 0, -1

    def _enter(self, slot: int) -> None:
        """A slot of the day never seen starts at the mean of the slot before it (as if seen
        `PROFILE_PRIOR` times) when a slot holds several points: a minute series' new hour
        continues its last one. (An hourly series' slot is one point a day: its first one is
        its mean.)"""
        if slot == self.slot:
            return
        if self.day_seen[slot] == 0 and self.slot >= 0 and self.step * len(self.day_seen) < DAY:
            self.day_mean[slot] = self.day_mean[self.slot]
            self.day_seen[slot] = PROFILE_PRIOR
            self.seen_total += self.day_mean[slot]
            self.seen_slots += 1
        self.slot = slot

    def _factor(self, slot: int, unit: float) -> float:
        """The slot's profile factor: its mean value over the mean of the slots seen, both
        as events (in `unit`s) over the points the slot's mean holds, with `PROFILE_EVENTS`
        more at factor 1: a slot whose few events say little (one expense seen once at 09:00)
        stays near flat. It depends on the values only, not on the level: a factor learned as
        a ratio to the level (as before) fed back into it, and for a sparse series drifted
        low while the level rose to make up for it (after a day of a few expenses an hour the
        level was 50 times the rate, and the first minutes of every new hour, at factor 1,
        expected that and paged their empty minutes, ~2 alerts a day)."""
        seen = self.day_seen[slot]
        if seen == 0 or not self.seen_slots:
            return 1.0
        points = seen if seen < PROFILE_POINTS else PROFILE_POINTS
        prior = PROFILE_EVENTS * unit
        mean = self.seen_total / self.seen_slots
        factor = (prior + points * self.day_mean[slot]) / (prior + points * mean)
        return PROFILE_FLOOR if factor < PROFILE_FLOOR else factor

    def update(
        self, t: float, value: float, *, judge: bool
    ) -> tuple[float, float, float, float, float]:
        """(expected, score in [0, 1], lower, upper band edges, z) of `value` at `t`: the mean
        forecast for it (before seeing it) and how far `value` is from it (score 0
        unless `judge`); then learn from it. z: the value's distance from the mean in standard
        deviations sqrt(m * d), for a change detector to add up."""
        if self.whole and value != math.floor(value):
            self.whole = False
        if value > 0:
            self.unit = value if self.unit == 0 else self.unit + UNIT_GAIN * (value - self.unit)
        unit = 1.0 if (self.whole and self.unit <= COUNT_UNIT_MAX) or self.unit <= 0 else self.unit
        # once: the forecast and the learning share the slot and its factor
        if len(self.day_mean) != len(self.day_seen) or not self.day_seen:
            self._profile()  # state from an older version
        slot = int(((t + self.step / 2) % DAY) / DAY * len(self.day_seen))
        self._enter(slot)
        factor = self._factor(slot, unit)
        expected = self.level * factor
        m = expected / unit  # max(m, 1e-3) and max(x, 0.0), as they return, without calls
        m = 1e-3 if m < 1e-3 else m
        x = value / unit
        x = 0.0 if x < 0.0 else x
        score = 0.0
        if judge:
            p = _tail(x, m, self.dispersion)
            score = min(1.0, -math.log10(p) / (2 * BAND_LOG10))
        spread = 3.0 * math.sqrt(m * self.dispersion)
        lower = m - spread
        lower = (lower if lower > 0.0 else 0.0) * unit
        upper = (m + spread) * unit
        self._learn(slot, factor, (x, m, unit))
        return expected, score, lower, upper, (x - m) / math.sqrt(m * self.dispersion)

    def _learn(self, slot: int, factor: float, point: tuple[float, float, float]) -> None:
        """Rate, profile and dispersion from the point (its value `x` and mean `m` in units,
        and the `unit`; `factor`: the slot's, as forecast); a value is capped at 4 spreads
        above the mean first, so a burst moves them a bounded amount."""
        x, m, unit = point
        n = self.n = self.n + 1
        if n > 10:
            sd = math.sqrt(m * self.dispersion)
            x = min(x, m + 4.0 * sd + 1.0)
            # The variance over the mean, as a ratio of slow sums: a sparse series' variance
            # is in its rare events (a point of 1 where 0.1 is expected, or of 3 when one
            # expense is three typical ones), which a per-point average of ratios capped at 2
            # standard deviations cut off (the index stayed at 1 whatever the events' sizes).
            # A squared distance counts up to `SPREAD_CLIP` standard deviations and one event,
            # so an incident barely widens it.
            clip = SPREAD_CLIP * sd + 1.0
            distance = (x - m) ** 2
            self.spread_sum += DISPERSION_GAIN * (
                (distance if distance < clip * clip else clip * clip) - self.spread_sum
            )
            self.mean_sum += DISPERSION_GAIN * (m - self.mean_sum)
            ratio = self.spread_sum / self.mean_sum
            self.dispersion = min(DISPERSION_CAP, ratio) if ratio > 1.0 else 1.0
        value = x * unit
        level_gain = 1.0 / n  # max(LEVEL_GAIN, 1 / n), as it returns
        if not level_gain > LEVEL_GAIN:
            level_gain = LEVEL_GAIN
        self.level += level_gain * (value / factor - self.level)
        seen = self.day_seen[slot] = self.day_seen[slot] + 1
        if seen == 1:
            self.seen_slots += 1
        gain = 1.0 / seen  # max(PROFILE_GAIN, 1 / seen), as it returns
        if not gain > PROFILE_GAIN:
            gain = PROFILE_GAIN
        step = gain * (value - self.day_mean[slot])
        self.day_mean[slot] += step
        self.seen_total += step
