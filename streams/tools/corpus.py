"""A labelled corpus of series shaped like real-world monitoring data, ours to judge detectors on.

`python -m streams.tools.corpus DIR [--seed N]` writes `DIR/<family>_<n>.csv` (`timestamp,value`,
as `pulse detect` reads them) and `DIR/labels.csv` (`series,start,end`), then `pulse evaluate
--series DIR --labels DIR/labels.csv` judges both detectors on them (pages and the on-call score,
and the row score of `streams.tools.row_score`).

The business simulator (`streams.tools.simulator`) is a clean company: Poisson-like sums with a
daily and a weekly shape. Monitoring series elsewhere are not: server CPU with benign spikes,
request latencies with heavy tails, counts that are zero all night and burst when something goes
viral, ad prices priced by the hour with missing hours, road sensors with dropouts, machine
temperatures that drift before a failure, sensors that get stuck. Each family here is one such
kind, written from its general shape (no public benchmark's data was read or fitted), with its
labelled anomalies and with what exported files have: times without a zone, repeated rows,
rows slightly out of order, gaps.

Labels are windows centred on each anomaly's onset, 10% of the file's time span shared among its
anomalies (the convention of streaming benchmarks: a detection well before the onset or long
after it is not credited to it). The first 15% of a file holds no anomaly (a detector's warm-up).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

START = datetime(2026, 3, 2, tzinfo=UTC).timestamp()  # a Monday
DAY = 86_400.0
FIVE_MINUTES = 300.0
WINDOW_SHARE = 0.10
"""The share of a file's time span covered by its anomalies' windows."""
QUIET_SHARE = 0.15
"""The first part of a file, where no anomaly is placed (the detectors warm up)."""


@dataclass(frozen=True, slots=True)
class Series:
    """One generated file: its points in time order and its anomalies' onsets."""

    name: str
    points: list[tuple[float, float]]
    onsets: list[float]
    zone_less: bool = True


Family = Callable[[random.Random, str], Series]


def _daily(t: float, peak_hour: float = 14.0) -> float:
    """-1 at night to 1 at `peak_hour` (UTC)."""
    return math.cos(2 * math.pi * ((t % DAY) / 3600.0 - peak_hour) / 24.0)


def _weekday(t: float) -> bool:
    return int((t - START) // DAY) % 7 < 5


def _onsets(rng: random.Random, times: list[float], count: int) -> list[float]:
    """`count` onsets spread over the file after its quiet share, at least a tenth apart."""
    first, last = times[int(len(times) * 0.2)], times[int(len(times) * 0.92)]
    span = (last - first) / count
    return [first + span * (i + rng.uniform(0.15, 0.85)) for i in range(count)]


def _grid(days: float, step: float) -> list[float]:
    return [START + i * step for i in range(int(days * DAY / step))]


def _within(t: float, onset: float, hours: float) -> bool:
    return onset <= t < onset + hours * 3600.0


def cpu(rng: random.Random, name: str) -> Series:
    """Server CPU %: a daily cycle, autocorrelated noise, benign one-point spikes (a cron job);
    anomalies: a runaway process holding the CPU near 90% for hours."""
    times = _grid(14, FIVE_MINUTES)
    onsets = _onsets(rng, times, 2)
    level, ar, points = rng.uniform(20, 40), 0.0, []
    for t in times:
        ar = 0.8 * ar + rng.gauss(0, 2.5)
        value = level + 10 * _daily(t) + ar
        if rng.random() < 0.004:
            value += rng.uniform(15, 35)
        if any(_within(t, o, 3) for o in onsets):
            value = 90 + rng.gauss(0, 3)
        points.append((t, min(100.0, max(0.0, round(value, 2)))))
    return Series(name, points, onsets)


def deploys(rng: random.Random, name: str) -> Series:
    """Memory or CPU of a service across deploys: flat levels with noise; anomalies: a deploy
    that moves the level by a third and stays (labelled at its onset only)."""
    times = _grid(14, FIVE_MINUTES)
    onsets = _onsets(rng, times, 2)
    level, points = rng.uniform(40, 60), []
    shifts = [rng.choice((-1, 1)) * level * rng.uniform(0.3, 0.4) for _ in onsets]
    for t in times:
        shift = sum(s for o, s in zip(onsets, shifts, strict=True) if t >= o)
        points.append((t, round(level + shift + rng.gauss(0, 1.5), 2)))
    return Series(name, points, onsets)


def latency(rng: random.Random, name: str) -> Series:
    """Request latency in ms: lognormal with a heavy right tail (some minutes are slow for no
    reason anyone pages for); anomalies: the median 2.5x for three hours."""
    times = _grid(14, FIVE_MINUTES)
    onsets = _onsets(rng, times, 2)
    median, points = rng.uniform(80, 200), []
    for t in times:
        value = median * (1 + 0.15 * _daily(t)) * math.exp(rng.gauss(0, 0.3))
        if rng.random() < 0.01:
            value *= rng.paretovariate(1.5)
        if any(_within(t, o, 3) for o in onsets):
            value *= 2.5
        points.append((t, round(value, 1)))
    return Series(name, points, onsets, zone_less=False)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def requests(rng: random.Random, name: str) -> Series:
    """Requests per 5 minutes: daily and weekly seasonality; anomalies: an outage, the count at
    5% of normal for 45 minutes."""
    times = _grid(21, FIVE_MINUTES)
    onsets = _onsets(rng, times, 2)
    peak, points = rng.uniform(300, 900), []
    for t in times:
        mean = peak * (0.55 + 0.45 * _daily(t)) * (1.0 if _weekday(t) else 0.6)
        if any(_within(t, o, 0.75) for o in onsets):
            mean *= 0.05
        points.append((t, float(_poisson(rng, mean))))
    return Series(name, points, onsets)


def social(rng: random.Random, name: str) -> Series:
    """Mentions per 5 minutes: a few by day, zeros all night, overdispersed (gamma-Poisson),
    small unlabelled flurries; anomalies: something goes viral, ten times the count decaying
    over two hours."""
    times = _grid(14, FIVE_MINUTES)
    onsets = _onsets(rng, times, 2)
    points = []
    flurry = 0.0
    for t in times:
        mean = 4.0 * max(0.02, 0.5 + 0.5 * _daily(t, 16.0)) ** 2
        if rng.random() < 0.003:
            flurry = 3.0
        flurry *= 0.7
        for o in onsets:
            if _within(t, o, 2):
                mean += 40 * math.exp(-(t - o) / 3600.0)
        mean *= 1 + flurry
        points.append((t, float(_poisson(rng, mean * rng.gammavariate(2.0, 0.5)))))
    return Series(name, points, onsets)


def ad_price(rng: random.Random, name: str) -> Series:
    """Hourly cost per click: lognormal around a daily shape, 5% of hours missing; anomalies:
    the price 1.8x for a day (a bidding error or click fraud)."""
    times = _grid(60, 3600.0)
    onsets = _onsets(rng, times, 2)
    base, points = rng.uniform(0.3, 1.5), []
    for t in times:
        if rng.random() < 0.05:
            continue
        value = base * (1 + 0.2 * _daily(t, 19.0)) * math.exp(rng.gauss(0, 0.25))
        if any(_within(t, o, 24) for o in onsets):
            value *= 1.8
        points.append((t, round(value, 4)))
    return Series(name, points, onsets)


def traffic(rng: random.Random, name: str) -> Series:
    """Road speed from a loop sensor every 5 minutes: free flow with weekday rush-hour dips,
    dropouts of 30 minutes to 3 hours; anomalies: an accident, speed at a fifth for an hour
    outside rush hours."""
    times = _grid(21, FIVE_MINUTES)
    onsets = []
    for onset in _onsets(rng, times, 2):
        hour = (onset % DAY) / 3600.0
        onsets.append(onset + (11 - hour) * 3600.0 if 6 <= hour < 10 or 15 <= hour < 19 else onset)
    free, points = rng.uniform(55, 70), []
    dropout_until = 0.0
    for t in times:
        if t < dropout_until:
            continue
        if rng.random() < 0.002 and not any(o - DAY / 8 < t < o + DAY / 8 for o in onsets):
            dropout_until = t + rng.uniform(0.5, 3) * 3600.0
            continue
        hour = (t % DAY) / 3600.0
        rush = _weekday(t) and (7 <= hour < 9 or 16 <= hour < 18)
        value = free * (0.55 if rush else 1.0) + rng.gauss(0, 3)
        if any(_within(t, o, 1) for o in onsets):
            value = free * 0.2 + rng.gauss(0, 2)
        jitter = rng.uniform(-20, 20)  # the sensor's clock is not exact
        points.append((t + jitter, round(max(0.0, value), 1)))
    return Series(name, points, onsets)


def machine(rng: random.Random, name: str) -> Series:
    """A machine's temperature every 5 minutes: steady with slow wander; the anomaly: a drift
    up over eight hours before a failure, then the machine off and cooling for six hours (one
    labelled anomaly: the drift's start; the failure falls in its window)."""
    times = _grid(14, FIVE_MINUTES)
    onsets = _onsets(rng, times, 1)
    drift = onsets[0]
    failure = drift + 8 * 3600.0
    level, wander, points = rng.uniform(60, 80), 0.0, []
    for t in times:
        wander = 0.98 * wander + rng.gauss(0, 0.15)
        value = level + wander + rng.gauss(0, 0.4)
        if drift <= t < failure:
            value += 12 * (t - drift) / (failure - drift)
        elif failure <= t < failure + 6 * 3600.0:
            value = 25 + (level - 25) * math.exp(-(t - failure) / 1800.0) + rng.gauss(0, 0.4)
        points.append((t, round(value, 2)))
    return Series(name, points, onsets)


def stuck(rng: random.Random, name: str) -> Series:
    """A pressure sensor with a daily cycle; anomalies: the sensor stuck at its last value for
    six hours (the level stays plausible; only the missing noise says so)."""
    times = _grid(14, FIVE_MINUTES)
    onsets = _onsets(rng, times, 1)
    level, points, held = rng.uniform(90, 110), [], None
    for t in times:
        value = level + 5 * _daily(t, 9.0) + rng.gauss(0, 1.0)
        if _within(t, onsets[0], 6):
            held = value if held is None else held
            value = held
        points.append((t, round(value, 2)))
    return Series(name, points, onsets)


FAMILIES: dict[str, Family] = {
    "cpu": cpu,
    "deploys": deploys,
    "latency": latency,
    "requests": requests,
    "social": social,
    "ad_price": ad_price,
    "traffic": traffic,
    "machine": machine,
    "stuck": stuck,
}


def windows(series: Series) -> list[tuple[float, float]]:
    """The labelled windows: centred on each onset, together `WINDOW_SHARE` of the time span."""
    span = series.points[-1][0] - series.points[0][0]
    half = WINDOW_SHARE * span / len(series.onsets) / 2
    return [(o - half, o + half) for o in series.onsets]


def _stamp(t: float, zone_less: bool) -> str:
    moment = datetime.fromtimestamp(round(t), UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if zone_less else moment.isoformat()


def rows(series: Series, rng: random.Random) -> list[tuple[str, str]]:
    """The file's rows as an export would hold them: about 0.5% repeated, 0.5% swapped with
    their neighbour."""
    out = []
    for t, value in series.points:
        row = (_stamp(t, series.zone_less), repr(value))
        out.append(row)
        if rng.random() < 0.005:
            out.append(row)
    for i in range(1, len(out) - 1):
        if rng.random() < 0.005:
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def generate(seed: int = 1, copies: int = 2) -> list[Series]:
    """Every family, `copies` files each, reproducible from `seed`."""
    out = []
    for family, make in FAMILIES.items():
        for copy in range(1, copies + 1):
            rng = random.Random(f"{seed}:{family}:{copy}")
            out.append(make(rng, f"{family}_{copy}"))
    return out


def write(directory: Path, seed: int = 1, copies: int = 2) -> list[Series]:
    """Write the corpus' CSVs and `labels.csv` into `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    corpus = generate(seed, copies)
    with (directory / "labels.csv").open("w", newline="") as out:
        labels = csv.writer(out)
        labels.writerow(("series", "start", "end"))
        for series in corpus:
            for start, end in windows(series):
                labels.writerow((series.name, _stamp(start, False), _stamp(end, False)))
    for series in corpus:
        with (directory / f"{series.name}.csv").open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(("timestamp", "value"))
            writer.writerows(rows(series, random.Random(f"{seed}:{series.name}:rows")))
    return corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.tools.corpus",
        description="Write a labelled corpus of real-world-like monitoring series (CPU, "
        "deploys, latency, requests, social counts, ad prices, road traffic, machine "
        "temperature, a stuck sensor) for `pulse evaluate --series DIR --labels DIR/labels.csv`.",
    )
    parser.add_argument("directory", type=Path, help="where to write the CSVs and labels.csv")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--copies", type=int, default=2, help="files per family (2)")
    args = parser.parse_args(argv)
    corpus = write(args.directory, args.seed, args.copies)
    points = sum(len(s.points) for s in corpus)
    anomalies = sum(len(s.onsets) for s in corpus)
    print(
        f"{len(corpus)} series, {points} points, {anomalies} labelled anomalies in {args.directory}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
