"""The series detector alone: CPU µs per point, and a digest of everything it said.

`python -m streams.tools.bench_detect [SEEDS] [REPEATS]` (defaults 2, 3) runs `SeriesDetector`
over synthetic series of eight kinds, SEEDS of each: hourly orders with a spike, a minute
series with a dip, sparse counts with a burst, heavy-tailed values that shift, a weighted ratio
that degrades, an irregular series with gaps (its step learned), a sparse minute series that
turns busy, and values around 0. It prints the CPU time per point (each repeat, and the
minimum) and a SHA-256 prefix of every `Score` and of each detector's final state.

Two uses: the detector's own cost, which `pulse bench` only shows inside the worker (`detection
per closed window`), and **exactness**: a change meant to make detection faster, not different,
must leave the digest as it was (run it on both commits, e.g. `PYTHONPATH=<worktree> python -m
streams.tools.bench_detect`). Any change of a score, however small, changes the digest.
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
import time
from collections.abc import Callable

from streams.detection.detectors import SeriesDetector

START = 1_767_571_200.0  # 2026-01-05 00:00 UTC, a Monday
HOUR, MINUTE, DAY = 3600.0, 60.0, 86_400.0
Point = tuple[float, float, float | None]
"""(time, value, weight): weight is the sample behind a ratio, None for other series."""


def _poisson(rng: random.Random, mean: float) -> int:
    count, product, limit = 0, rng.random(), math.exp(-mean)
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _hourly(rng: random.Random) -> list[Point]:
    points: list[Point] = []
    for i in range(24 * 21):
        t = START + i * HOUR
        rate = 50 * (1 + 0.6 * math.sin(2 * math.pi * (i % 24) / 24))
        rate *= 0.8 if (i // 24) % 7 >= 5 else 1.0
        value = sum(rng.lognormvariate(3, 0.5) for _ in range(_poisson(rng, rate)))
        points.append((t, value * (2.5 if 24 * 14 <= i < 24 * 14 + 3 else 1.0), None))
    return points


def _minute(rng: random.Random) -> list[Point]:
    points: list[Point] = []
    for i in range(60 * 24 * 2):
        rate = 20 * (1 + 0.5 * math.sin(2 * math.pi * i / 1440))
        value = max(0.0, rng.gauss(rate, math.sqrt(rate))) * (0.3 if 2000 <= i < 2030 else 1.0)
        points.append((START + i * MINUTE, float(round(value)), None))
    return points


def _sparse(rng: random.Random) -> list[Point]:
    points: list[Point] = []
    for i in range(24 * 21):
        rate = 0.6 * (1 + 0.8 * math.sin(2 * math.pi * (i % 24) / 24))
        burst = 3 if 24 * 15 <= i < 24 * 15 + 4 else 0
        points.append((START + i * HOUR, float(_poisson(rng, rate) + burst), None))
    return points


def _heavy(rng: random.Random) -> list[Point]:
    points: list[Point] = []
    for i in range(24 * 21):
        value = 100 * (1 + 0.3 * math.sin(2 * math.pi * (i % 24) / 24)) * rng.paretovariate(2.5)
        points.append((START + i * HOUR, value * (1.5 if i > 24 * 16 else 1.0), None))
    return points


def _ratio(rng: random.Random) -> list[Point]:
    points: list[Point] = []
    for i in range(24 * 21):
        answers = max(1, int(rng.gauss(30, 10)))
        share = 0.8 if i < 24 * 15 else 0.6
        satisfied = sum(rng.random() < share for _ in range(answers))
        points.append((START + i * HOUR, satisfied / answers, float(answers)))
    return points


def _gaps(rng: random.Random) -> list[Point]:
    points: list[Point] = []
    t = START
    for _ in range(600):
        t += HOUR * (1 if rng.random() < 0.8 else rng.randint(2, 20))
        value = 50 + 10 * math.sin(2 * math.pi * (t % DAY) / DAY) + rng.gauss(0, 3)
        points.append((t, value, None))
    return points


def _busy(rng: random.Random) -> list[Point]:
    points: list[Point] = []
    for i in range(60 * 24 * 3):
        quiet = 1.0 if rng.random() < 0.1 else 0.0
        value = quiet if i < 60 * 24 * 2 else rng.gauss(20_000, 2_000)
        points.append((START + i * MINUTE, value, None))
    return points


def _around_zero(rng: random.Random) -> list[Point]:
    return [
        (START + i * HOUR, rng.gauss(0, 100) + (300 if i == 24 * 10 else 0), None)
        for i in range(24 * 14)
    ]


KINDS: dict[str, tuple[Callable[[random.Random], list[Point]], float | None]] = {
    "hourly": (_hourly, HOUR),
    "minute": (_minute, MINUTE),
    "sparse": (_sparse, HOUR),
    "heavy": (_heavy, HOUR),
    "ratio": (_ratio, HOUR),
    "gaps": (_gaps, None),
    "busy": (_busy, MINUTE),
    "around_zero": (_around_zero, HOUR),
}
"""Each kind: how its points are made, and the step its detector is told (None: learned)."""


def series(seeds: int) -> list[tuple[float | None, list[Point]]]:
    """(step, points) of every kind for seeds 0 .. seeds - 1, the same on every run."""
    return [
        (step, make(random.Random(f"{seed}-{kind}")))
        for seed in range(seeds)
        for kind, (make, step) in KINDS.items()
    ]


def measure(runs: list[tuple[float | None, list[Point]]]) -> tuple[str, float, int]:
    """(digest, CPU µs per point, points) of fresh detectors over `runs`."""
    digest = hashlib.sha256()
    cpu, points = 0.0, 0
    for step, pts in runs:
        detector = SeriesDetector(step)
        started = time.process_time()
        scores = [detector.update(t, value, weight) for t, value, weight in pts]
        cpu += time.process_time() - started
        points += len(pts)
        for score in scores:
            digest.update(repr(score).encode())
        digest.update(repr(detector).encode())
    return digest.hexdigest()[:16], 1e6 * cpu / points, points


def main(argv: list[str]) -> None:
    seeds = int(argv[0]) if argv else 2
    repeats = int(argv[1]) if len(argv) > 1 else 3
    runs = series(seeds)
    results = [measure(runs) for _ in range(repeats)]
    digests = {digest for digest, _, _ in results}
    if len(digests) != 1:  # a detector must say the same of the same points
        raise SystemExit(f"bench_detect: the digest changed between repeats: {sorted(digests)}")
    shown = ", ".join(f"{us:.1f}" for _, us, _ in results)
    sys.stdout.write(
        f"detector, {results[0][2]} points of {len(KINDS)} kinds x {seeds} seeds: {shown} CPU "
        f"us/point (min {min(us for _, us, _ in results):.1f}); digest {results[0][0]}\n"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
