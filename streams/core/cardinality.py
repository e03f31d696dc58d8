"""Bounded label values: a series budget per dimension, per combination and in total.

Label values come only from declared dimensions, and three limits keep the series a worker
exports bounded, whatever publishers send:

- each dimension admits at most `limit` distinct values; later ones become `other`;
- each set of dimension names (a *space*: `business_unit, region` is shared by revenue, cogs,
  orders, ...) admits at most `max_combinations` distinct value combinations;
- admitting a combination costs the KPI series it can add (`series_weights`), and the total cost
  stays within `max_series`.

A combination past a limit is folded into the space's `other` combination (every dimension
`other`). Measures of one space share their admitted combinations, so a ratio's numerator and
denominator are folded alike. Admission is first come, first served and never revoked; `admit`
replays it from recovered state, so a restart folds as before. Every fold is counted once per
event and dimension, by the limit that folded it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Literal

from streams.core.compiler import CompiledCatalog

OTHER = "other"

Limit = Literal["dimension_values", "combinations", "series"]
LIMITS: tuple[Limit, ...] = ("dimension_values", "combinations", "series")
Space = tuple[str, ...]
"""Dimension names of a measure, in its order."""

PARTS_PER_KIND = {"ratio": 3, "cumulative_ratio": 3, "trailing_ratio": 3, "period_variance": 3}
"""Gauge families a KPI exports per label set: value, numerator and denominator for ratios."""


def series_weights(catalog: CompiledCatalog) -> dict[Space, int]:
    """KPI series one new combination of each space can add to /metrics, at most.

    A KPI is charged to every space its measures are kept in (operating margin to both
    `business_unit, region` and opex's four dimensions), so the bound holds even where a KPI sums
    a finer measure up to its own dimensions.
    """
    measures_of: dict[str, set[str]] = {}
    for kpi in catalog.kpis.values():
        if kpi.kind != "formula":
            measures_of[kpi.name] = {*kpi.numerator, *(kpi.denominator or {})}
    for name in catalog.formula_order:  # made of other KPIs: their measures, in order
        kpi = catalog.kpis[name]
        measures_of[name] = {m for ref in kpi.numerator for m in measures_of.get(ref, ())}
    weights: dict[Space, int] = {}
    for kpi in catalog.kpis.values():
        series = PARTS_PER_KIND.get(kpi.kind, 1) * len(kpi.windows) * max(1, len(kpi.quantiles))
        for space in {catalog.measures[m].dims for m in measures_of[kpi.name]}:
            weights[space] = weights.get(space, 0) + series
    return weights


class CardinalityGuard:
    def __init__(
        self,
        limit: int,
        *,
        max_combinations: int | None = None,
        max_series: int | None = None,
        weights: dict[Space, int] | None = None,
    ) -> None:
        """`limit` distinct values per dimension; `max_combinations` per space and `max_series`
        in total (None: unlimited); `weights` as `series_weights` (a space not in it costs 1)."""
        self.limit = limit
        self.max_combinations = max_combinations
        self.max_series = max_series
        self.weights = weights or {}
        self.folded: Counter[tuple[str, Limit]] = Counter()
        """Events folded, per (dimension, limit that folded it)."""
        self.series = sum(self.weights.values())
        """Series cost of the admitted combinations, starting with every space's `other`."""
        self.combinations: Counter[Space] = Counter()
        self._admitted: dict[str, set[str]] = {}
        self._known: set[tuple[Space, tuple[str, ...]]] = set()
        """Admitted (names, values) combinations: the common case is one set lookup."""
        self._event: object = None
        self._event_dims: set[str] = set()

    @classmethod
    def for_catalog(
        cls, catalog: CompiledCatalog, limit: int, *, max_combinations: int, max_series: int
    ) -> CardinalityGuard:
        """The series budget of a catalog: each combination costs its KPI series."""
        return cls(
            limit,
            max_combinations=max_combinations,
            max_series=max_series,
            weights=series_weights(catalog),
        )

    def fold(self, names: Space, values: tuple[str, ...], event: object = None) -> tuple[str, ...]:
        """`values`, or with the dimensions past a limit as `other`. `event` identifies the
        event being counted (one event feeds several measures; it is counted once)."""
        if (names, values) in self._known:
            return values
        return self._fold(names, values, event)

    def _fold(self, names: Space, values: tuple[str, ...], event: object) -> tuple[str, ...]:
        folded: list[str] | None = None
        for index, name in enumerate(names):
            value = values[index]
            admitted = self._admitted.get(name)
            if admitted is None:
                admitted = self._admitted[name] = set()
            if value in admitted:
                continue
            if len(admitted) < self.limit:
                admitted.add(value)
                continue
            if folded is None:
                folded = list(values)
            folded[index] = OTHER
            self._count(event, name, "dimension_values")
        result = values if folded is None else tuple(folded)
        if all(v == OTHER for v in result) or (names, result) in self._known:
            return result
        refused = self._refusal(names)
        if refused is None:
            self._admit_combination(names, result)
            return result
        for name in names:
            self._count(event, name, refused)
        return (OTHER,) * len(names)

    def _refusal(self, names: Space) -> Limit | None:
        """Which limit a new combination of `names` would break (None: it fits)."""
        if self.max_combinations is not None and self.combinations[names] >= self.max_combinations:
            return "combinations"
        if self.max_series is not None and self.series + self.weights.get(names, 1) > (
            self.max_series
        ):
            return "series"
        return None

    def _admit_combination(self, names: Space, values: tuple[str, ...]) -> None:
        self._known.add((names, values))
        self.combinations[names] += 1
        self.series += self.weights.get(names, 1)

    def _count(self, event: object, name: str, limit: Limit) -> None:
        if event is None:
            self.folded[(name, limit)] += 1
            return
        if event is not self._event:
            self._event, self._event_dims = event, set()
        if name not in self._event_dims:
            self._event_dims.add(name)
            self.folded[(name, limit)] += 1

    def dimensions(self) -> list[str]:
        """Every dimension the guard has seen a value of (folded or not)."""
        return sorted(self._admitted)

    def admit(self, names: Iterable[str], values: Iterable[str]) -> None:
        """Re-admit a combination found in recovered state, so existing series keep their
        labels and later events fold as they did before the restart."""
        space, combination = tuple(names), tuple(values)
        for name, value in zip(space, combination, strict=True):
            admitted = self._admitted.setdefault(name, set())
            if value != OTHER and len(admitted) < self.limit:
                admitted.add(value)
        if all(v == OTHER for v in combination) or (space, combination) in self._known:
            return
        if self._refusal(space) is None:
            self._admit_combination(space, combination)
