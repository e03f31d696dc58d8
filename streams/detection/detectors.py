"""Streaming anomaly detectors for one series: a score in [0, 1] and an expected band per point.

`SeriesDetector` combines two complementary methods, both O(1) in time and memory per update:

- **Robust seasonal baseline** (`streams.detection.baseline.Baseline`): Holt-Winters exponential
  smoothing of level, damped trend and multiplicative seasonality (slot of the day x day of the
  week), made robust against the outliers it is meant to find, with separate scales above and
  below the forecast. Three candidates run side by side: no seasonality, daily, daily + weekly; the
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

A series that is mostly 0 is judged as a count (`streams.detection.counts`) instead, and one
with a few events a point both ways (`LOW_COUNT_SHARE`); when it turns busy with scales far too
small for its new noise, the band starts again (`_relearn`).

`EwmaDetector` is the plain EWMA z-score baseline that `pulse evaluate` compares against.
Pure: stdlib only. Times are epoch seconds; `step` is the series' spacing in seconds.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import NamedTuple, Protocol

from streams.detection.baseline import (
    ACCEPT_POINTS,
    DAY,
    REL_FLOOR,
    WEEK,
    Z_BAND,
    Baseline,
    Period,
    Tuning,
)
from streams.detection.counts import BAND_LOG10, CountModel
from streams.detection.shift import ShiftTest
from streams.detection.tails import TailCalibration
from streams.errors import ContractViolation

PLAUSIBLE_ERROR = 1.3
"""A candidate within this factor of the chosen one's forecast error may explain a point."""
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
LOW_COUNT_SHARE = 0.02
"""A never-negative sum or count 0 in fewer points, but in this share or more (a few expenses a
minute: 2 to 4 a point), is judged by its band and as a count, the more forgiving judgement counts:
the sum of a few lognormal expenses is skewed, a band's scale above learned from its body
misses how far it reaches (2 and 3 expenses a minute paged 0.3 times a day)."""
ONSET_DECAY = 0.9
"""The alert lifecycle judges the k-th point of a change at `ONSET_DECAY`**k of its score..."""
ONSET_FADE = 0.7
"""...and the point's score (`pulse detect`'s, the dashboards') fades from the third point on by
this factor a point: a benchmark that counts every flagged row charges each row of a change that
is no incident, and an alert has opened by the change's second point (`_onset`)."""
RELEARN_POINTS = ACCEPT_POINTS
"""Points a band learns from before it judges again, after its series left the sparse state."""
RELEARN_SPREAD = 10.0
"""... when its recent points spread over this many times its band's scale (`_band_too_narrow`)."""
GAUSS_MEDIAN_AD = 1.4826
"""A Gaussian's scale over its median absolute deviation (`GAUSS_MAD`: its mean one)."""
PAGING_FACTORS = tuple(ONSET_DECAY**k for k in range(ACCEPT_POINTS))
ONSET_FACTORS = tuple(
    ONSET_DECAY ** min(k, 1) * ONSET_FADE ** max(0, k - 1) for k in range(ACCEPT_POINTS)
)
"""What the k-th point of a change (k = 0 first) scores, as a fraction of what it would alone:
for the alert lifecycle (`Score.paging`: 1, 0.9, 0.81, ...) and as the point's score (1, 0.9,
0.63, 0.44, ...)."""
HOLD_SCORE = 0.25
"""A change holds while its points stay on its side at this score or more."""
PRECISION_RANGE = (1 / 16, 4.0)
"""A ratio's sample counts as 1/16 to 4 times the series' typical one (its scale 4x to 0.5x)."""
WEIGHT_GAIN = 0.02
"""Per point: the typical sample of a ratio is averaged over ~50 points."""
STUCK_POINTS = 6
"""A value repeated exactly this many times more, by a series that almost never repeats one
(`STUCK_SHARE`), is a stuck source: a frozen sensor, a feed resending its last value."""
STUCK_SHARE = 0.01
REPEAT_GAIN = 0.01
"""Per point: the share of exact repeats is averaged over ~100 points."""


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
    paging: float = math.nan
    """The score the alert lifecycle judges, when it differs from `score` (NaN: the same): the
    point's score with the onset's slower decay `ONSET_DECAY`**k (see `SeriesDetector._onset`)."""

    @property
    def alerting(self) -> float:
        """The score the alert lifecycle judges (`paging`, or `score`)."""
        return self.score if math.isnan(self.paging) else self.paging


class _Judged(NamedTuple):
    """One model's judgement of a point, before onset and acceptance (a tuple: a `Score` is
    built once per point, a frozen dataclass per candidate cost a tenth of the detector)."""

    score: float
    expected: float
    lower: float
    upper: float
    z: float
    raw: float
    """The standardized residual before the tails' width (what the tails learn from; the count
    model's judgement, which comes after the tails learned, repeats its z here)."""
    side: int
    """+1 above, -1 below: of the residual, or of the CUSUM when that gives the score."""
    holding: float
    """How much a change still holds at this point (`_onset`)."""


def _by_score(judged: _Judged) -> float:
    return judged.score


class Detector(Protocol):
    def update(self, t: float, value: float, weight: float | None = None) -> Score:
        """`weight`: the number of events behind a ratio over counted events (None: not one)."""
        ...


_CUSUM_CLIP = 2 * Z_BAND


@dataclass(slots=True)
class _Cusum:
    """Two-sided CUSUM with forgetting over standardized residuals."""

    up: float = 0.0
    down: float = 0.0

    def update(self, z: float) -> float:
        """Add `z` (clipped at 2 band widths); the larger side. Per candidate and point, so
        `max`/`min` are written out as what they return (`b if b > a else a`)."""
        z = z if z < _CUSUM_CLIP else _CUSUM_CLIP
        z = z if z > -_CUSUM_CLIP else -_CUSUM_CLIP
        up = CUSUM_FORGET * self.up + z - CUSUM_K
        up = up if up > 0.0 else 0.0
        down = CUSUM_FORGET * self.down - z - CUSUM_K
        down = down if down > 0.0 else 0.0
        self.up, self.down = up, down
        return down if down > up else up


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
    _models: list[Baseline] = field(default_factory=list)
    _chosen: int = 0
    _cusums: list[_Cusum] = field(default_factory=list)
    _gaps: list[float] = field(default_factory=list)
    _last: float = math.nan
    _n: int = 0
    _pending: list[tuple[float, float]] = field(default_factory=list)
    _width: float = 1.0
    """The band's width in scales, for the series' own tails (`streams.detection.tails`)."""
    _tail: TailCalibration = field(default_factory=TailCalibration)
    _shift: ShiftTest = field(default_factory=ShiftTest)
    """The median of the last residuals, in the body's scales (`streams.detection.shift`)."""
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
    _repeated: int = 0
    """Points in a row equal to the one before (`_stuck`)."""
    _repeats: float = 0.0
    """Recent share of points equal to the one before..."""
    _repeats_before: float = 0.0
    """...as it was when the current run of repeats began."""
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
            self._models = [Baseline(p, self.step, self.tuning) for p in _candidates(self.step)]
            self._cusums = [_Cusum() for _ in self._models]
            self._counts = CountModel(self.step)
        self._n, self._last = self._n + 1, t
        precision = self._precision(weight)
        results = [model.update(t, value, precision) for model in self._models]
        if self._n <= 2:
            expected = results[self._chosen][1]
            self._choose(t)
            return Score(0.0, expected, expected, expected, ready=False)
        stuck = self._stuck(value)
        self._recent.append(value)
        sparse = self._learn_sparse(value)
        ready = self._ready(t) and self._relearning == 0
        self._relearning = max(0, self._relearning - 1)
        # Every plausible candidate (eligible, forecasting about as well as the chosen one)
        # scores the point; the most forgiving one explains it. An anomaly is a point no
        # plausible model expects: a Saturday that only the weekly profile knows is quiet is not.
        chosen = self._models[self._chosen]
        # In a series' first weekend (or weekday) hours after a whole day of the other kind,
        # the shape learned so far is the other kind's: every eligible candidate is plausible,
        # whatever its error (a road's first Saturday morning has no rush hour). The weekly
        # candidate's weekday and weekend profiles count once both have seen a whole day at
        # this hour, days before the candidate is eligible (a week and a day).
        models = self._models
        limit = math.inf if models[-1].new_kind else PLAUSIBLE_ERROR * chosen.error
        judged = [
            self._judge(i, value, result)
            for i, result in enumerate(results)
            if i == self._chosen
            or ((models[i].both_kinds or models[i].eligible(t)) and models[i].error <= limit)
        ]
        best = min(judged, key=_by_score)
        best = self._shifted(best, ready)
        if ready:  # during warm-up the model itself is still wrong: that is not the tails
            self._tail.update(best.raw)
            self._width = self._tail.width
        self._choose(t)
        low = (
            not sparse
            and self._nonnegative
            and self._zeros >= LOW_COUNT_SHARE
            and not self._models[0].counted  # a ratio's noise follows its sample instead
        )
        judged_count = self._counts.update(t, value, judge=sparse or low)
        if sparse:
            best = self._judge_count(judged_count, ready=ready)
        else:
            if low:  # a few events a point: the band's or the count's, the more forgiving
                counted = self._judge_count(judged_count, ready=ready)
                if counted.score < best.score:
                    best = counted
            if stuck:  # inside the band, but no longer moving: a change that holds
                best = best._replace(score=1.0, side=1, holding=1.0)
        value_score, paging, accepted = self._onset(best.score, best.side, ready, best.holding)
        return Score(
            value_score,
            best.expected,
            best.lower,
            best.upper,
            ready,
            best.z,
            accepted,
            paging=paging,
        )

    def _judge_count(
        self, judged: tuple[float, float, float, float, float], *, ready: bool
    ) -> _Judged:
        """The count model's score of a sparse series' point (`judged`: its expected value,
        count score, band and z), calibrated on its own tails, with its CUSUM; the side it
        points to and how much a change holds (as `_judge`)."""
        expected, count, lower, upper, count_z = judged
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
        return _Judged(count, expected, lower, upper, count_z, count_z, side, holding)

    def _stuck(self, value: float) -> bool:
        """Learn whether `value` repeats the one before; whether the series is stuck: a
        non-zero value repeated `STUCK_POINTS` times more by a series that, until then,
        repeated under `STUCK_SHARE` of its values. Its value sits inside the band; only the
        missing noise says so. It scores as a change (its onset highest, accepted after
        `ACCEPT_POINTS` points: the alert closes, and the frozen value is the level)."""
        repeat = bool(self._recent) and value == self._recent[-1]
        if not repeat:
            self._repeated = 0
        else:
            if self._repeated == 0:
                self._repeats_before = self._repeats
            self._repeated += 1
        self._repeats += max(REPEAT_GAIN, 1.0 / self._n) * (repeat - self._repeats)
        return (
            value != 0
            and self._repeats_before < STUCK_SHARE
            and STUCK_POINTS <= self._repeated < STUCK_POINTS + ACCEPT_POINTS
        )

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
        starts again from the level its recent points held (`Baseline.relearn`), with the
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
        self._shift.clear()
        self._tail = TailCalibration()
        self._width = self._tail.width
        self._run = self._side = 0
        self._relearning = RELEARN_POINTS

    def _precision(self, weight: float | None) -> float:
        """This point's sample relative to the series' typical one (1 without a sample), then
        learn the typical sample."""
        if weight is None or weight <= 0:
            return 1.0
        if not self._models[0].counted:  # once: a series is a ratio over counted events or not
            for model in self._models:
                model.counted = True  # its band follows its sample, not its level
        precision = 1.0
        if self._weight > 0:
            low, high = PRECISION_RANGE
            precision = min(high, max(low, weight / self._weight))
        self._weight += max(WEIGHT_GAIN, 1.0 / self._n) * (weight - self._weight)
        return precision

    def _onset(
        self, score: float, side: int, ready: bool, holding: float
    ) -> tuple[float, float, bool]:
        """Rank the onset of a change highest, and accept a change that holds: the point's
        score, the score the alert lifecycle judges (`Score.paging`), and whether it accepted.

        A point at >= 0.5 starts a change; it holds while the points stay on its side at >=
        `HOLD_SCORE` (the robust baseline follows a shift a little, so its later points score
        less than the first, but they are still the change). Its k-th point (k = 0 first) scores
        `ONSET_FACTORS[k]` of what it would alone (1, 0.9, 0.63, 0.44, ...), so the onset stands
        out and the score is back under 0.5 by the fourth point while the change holds. The alert
        lifecycle judges `PAGING_FACTORS[k]` (0.9**k) of it: the same for the first two points,
        which open an alert, and then slower, so a change whose second point fell just short
        can still open one at its next points, and an alert lasts about as long as its change
        holds. After `ACCEPT_POINTS` points the change is the new normal: every candidate's
        level moves to the median of its recent deseasonalized values, the CUSUMs restart, and
        the point says `accepted` (the alert lifecycle closes the alert as "new level
        accepted"). An hourly series accepts a new level after 12 hours, a 5-minute one after
        an hour.
        """
        holds = self._run > 0 and side == self._side and holding >= HOLD_SCORE
        if not (ready and (holds or score >= 0.5)):
            self._run = self._side = 0
            return score, score, False
        self._run = self._run + 1 if holds else 1
        self._side = side
        k = self._run - 1
        faded, paging = score * ONSET_FACTORS[k], score * PAGING_FACTORS[k]
        if self._run < ACCEPT_POINTS:
            return faded, paging, False
        for model in self._models:
            model.accept()
        for cusum in (*self._cusums, self._count_cusum):
            cusum.up = cusum.down = 0.0
        self._shift.clear()
        self._run = self._side = 0
        return faded, paging, True

    def _shifted(self, best: _Judged, ready: bool) -> _Judged:
        """The most forgiving candidate's judgement, scored as a held shift when its last
        residuals, in the body's scales, say so (`streams.detection.shift`): only where the tails
        widened the band, which hides such a shift point by point and in the CUSUM (its
        increments are divided by the width too)."""
        width = self._width
        shifted = self._shift.update(best.z * width, judge=width > 1.0, learn=ready)
        if not shifted:
            return best
        moved = min(1.0, abs(shifted) / (2 * Z_BAND))
        if moved <= best.score:
            return best._replace(holding=max(best.holding, moved))
        return best._replace(score=moved, side=1 if shifted > 0 else -1, holding=moved)

    def _judge(
        self, index: int, value: float, forecast: tuple[float, float, float, float]
    ) -> _Judged:
        """The score of candidate `index` for this point (see `_Judged`)."""
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
        size = abs(z) / (2 * Z_BAND)
        pushed = statistic / (2 * CUSUM_H)
        holding = pushed if pushed > size else size  # min(1, max(size, pushed)), no calls
        holding = holding if holding < 1.0 else 1.0
        rising = cusum.up >= cusum.down
        if abs(z) / Z_BAND >= statistic / CUSUM_H:
            side = 1 if z >= 0 else -1
        else:
            side = 1 if rising else -1
        # The CUSUM scores a point only while the point pushes it (beyond K on its side): its
        # memory of a spike that is over must not hold an alert open for ten more points.
        if not (z > CUSUM_K if rising else z < -CUSUM_K):
            pushed = 0.0
        score = pushed if pushed > size else size
        score = score if score < 1.0 else 1.0
        upper = expected + Z_BAND * width * above
        return _Judged(score, expected, lower, upper, z, raw, side, holding)

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
