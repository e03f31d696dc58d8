"""Quantiles from DDSketch (the `ddsketch` library), mergeable across partitions and workers.

Guarantee: with relative accuracy 0.01, a reported quantile is within 1% of the exact value
`sorted(values)[floor(q * (n - 1))]` (for positive values; zero is kept exactly).
"""

from __future__ import annotations

from decimal import Decimal

from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)


class QuantileSketch:
    __slots__ = ("_bins", "_sketch", "_zeros")

    def __init__(self) -> None:
        self._sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
        # The sketch's own store is private; keep our own bin counts for the changelog.
        self._bins: dict[int, int] = {}
        self._zeros = 0

    @property
    def count(self) -> int:
        return self._zeros + sum(self._bins.values())

    def add(self, value: float, weight: int = 1) -> None:
        """Add a value >= 0 (negative values have no meaning for durations and are ignored)."""
        if value < 0:
            return
        self._sketch.add(value, weight)
        if value == 0:
            self._zeros += weight
        else:
            key = _MAPPING.key(value)
            self._bins[key] = self._bins.get(key, 0) + weight

    def merge(self, other: QuantileSketch) -> None:
        self._sketch.merge(other._sketch)
        for key, count in other._bins.items():
            self._bins[key] = self._bins.get(key, 0) + count
        self._zeros += other._zeros

    def copy(self) -> QuantileSketch:
        clone = QuantileSketch()
        clone.merge(self)
        return clone

    def quantile(self, q: Decimal) -> float | None:
        return self._sketch.get_quantile_value(float(q)) if self.count else None

    def to_json(self) -> list[list[int]]:
        return [[0, self._zeros], *([key, count] for key, count in sorted(self._bins.items()))]

    @classmethod
    def from_json(cls, data: list[list[int]]) -> QuantileSketch:
        sketch = cls()
        (_, zeros), *bins = data
        if zeros:
            sketch.add(0.0, zeros)
        for key, count in bins:
            sketch.add(_MAPPING.value(key), count)
        return sketch
