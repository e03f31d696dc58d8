"""Why a KPI series is anomalous: which dimension values moved most, and which input moved.

- **Dimensions**: the deviations from expected (observed - expected) of every series of the same
  KPI and window at the same window instance are summed per dimension value, in the direction of
  the alert. `share` is that value's part of the total deviation: "80% of the drop is
  region=emea".
- **Inputs**: a ratio or formula KPI is explained by its inputs (the KPIs its numerator and
  denominator are made of, at the same labels): each input's deviation in scales (z) and relative
  to its expected value; the one that moved most is named: "gross margin fell because cogs rose
  35% above expected, not because revenue fell".
Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from streams.core.catalog import Kpi

Labels = tuple[tuple[str, str], ...]
MIN_SHARE = 0.15
"""Dimension values below this share of the deviation are not named."""
MOVED_Z = 2.0
"""An input moved when it is this many scales from its expected value."""


@dataclass(frozen=True, slots=True)
class Point:
    """One series at one window instance: what was observed and expected."""

    labels: Labels
    observed: float
    expected: float
    z: float


@dataclass(frozen=True, slots=True)
class DimensionShare:
    dimension: str
    value: str
    share: float


@dataclass(frozen=True, slots=True)
class InputMove:
    kpi: str
    observed: float
    expected: float
    change: float
    """(observed - expected) / |expected|."""
    z: float


@dataclass(frozen=True, slots=True)
class Explanation:
    text: str
    dimensions: tuple[DimensionShare, ...] = ()
    inputs: tuple[InputMove, ...] = ()


def dimension_shares(siblings: Sequence[Point], direction: float) -> tuple[DimensionShare, ...]:
    """Share of the total deviation (in `direction`: +1 up, -1 down) per dimension value."""
    moved = [(p.labels, max(0.0, direction * (p.observed - p.expected))) for p in siblings]
    total = sum(d for _, d in moved)
    if total <= 0 or len(siblings) < 2:
        return ()
    per_value: dict[tuple[str, str], float] = {}
    for labels, deviation in moved:
        for pair in labels:
            per_value[pair] = per_value.get(pair, 0.0) + deviation
    distinct = {name: {v for n, v in per_value if n == name} for name, _ in per_value}
    shares = [
        DimensionShare(name, value, round(dev / total, 4))
        for (name, value), dev in per_value.items()
        if len(distinct[name]) > 1 and dev / total >= MIN_SHARE
    ]
    return tuple(sorted(shares, key=lambda s: (-s.share, s.dimension, s.value))[:3])


def input_kpis(kpi: Kpi, kpis: Mapping[str, Kpi]) -> tuple[str, ...]:
    """The KPIs a KPI of several inputs is made of: formulas name KPIs; ratios and combined
    balances name measures, explained by the plain KPI of each measure where there is one."""
    names = [*kpi.numerator, *(kpi.denominator or {})]
    if kpi.kind == "formula":
        return tuple(dict.fromkeys(n for n in names if n in kpis))
    plain = {
        next(iter(k.numerator)): k.name
        for k in kpis.values()
        if k.kind in {"flow", "balance"} and len(k.numerator) == 1 and k.denominator is None
    }
    return tuple(dict.fromkeys(plain[n] for n in names if n in plain and plain[n] != kpi.name))


def input_moves(inputs: Mapping[str, Point]) -> tuple[InputMove, ...]:
    """The inputs ordered by how far they moved (|z|), largest first."""
    moves = [
        InputMove(
            name,
            p.observed,
            p.expected,
            round((p.observed - p.expected) / abs(p.expected), 4) if p.expected else 0.0,
            round(p.z, 2),
        )
        for name, p in inputs.items()
    ]
    return tuple(sorted(moves, key=lambda m: (-abs(m.z), m.kpi)))


def explain(
    kpi: str,
    point: Point,
    siblings: Sequence[Point],
    inputs: Mapping[str, Point],
    *,
    ratio: bool = False,
) -> Explanation:
    """The explanation of an alert on `point` of `kpi`. `siblings`: the finest series inside the
    alerted series' scope (their labels include its labels). `ratio`: the KPI is a ratio in
    0-1, whose move is stated in points ("12.3% vs 31.0% expected"): a percent of a near-zero
    expectation would mean nothing."""
    direction = 1.0 if point.observed >= point.expected else -1.0
    verb = "rose" if direction > 0 else "fell"
    if ratio:
        change = f" to {point.observed:.1%} vs {point.expected:.1%} expected"
    elif point.expected:
        change = (
            f" {abs(point.observed - point.expected) / abs(point.expected):.0%}"
            f" {'above' if direction > 0 else 'below'} expected"
        )
    else:
        change = ""
    text = f"{kpi} {verb}{change}"
    shares = dimension_shares(siblings, direction)
    if shares:
        top = shares[0]
        what = "rise" if direction > 0 else "drop"
        text += f"; {top.share:.0%} of the {what} is {top.dimension}={top.value}"
    moves = input_moves(inputs)
    moved = [m for m in moves if abs(m.z) >= MOVED_Z]
    if moved:
        parts = [
            f"{m.kpi} {'rose' if m.z > 0 else 'fell'} {abs(m.change):.0%} "
            f"{'above' if m.z > 0 else 'below'} expected"
            for m in moved
        ]
        text += "; because " + " and ".join(parts)
        calm = [m.kpi for m in moves if abs(m.z) < MOVED_Z]
        if calm:
            text += f" ({', '.join(calm)} within {'their' if len(calm) > 1 else 'its'} band)"
    elif moves:
        text += "; no single input moved out of its band"
    return Explanation(text, shares, moves)
