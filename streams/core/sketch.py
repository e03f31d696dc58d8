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
    """Bin counts of `_MAPPING` (the changelog's form); the `DDSketch` that answers quantiles
    is built from them only when a quantile is asked (a window's close), not kept beside them
    on every `add` and `merge` of the hot path. Built from the bins it answers exactly what a
    `DDSketch` fed the values one by one answers: its quantiles read only the bins' keys and
    counts, and `_MAPPING.key(_MAPPING.value(k)) == k` for every key (as `from_json` relies
    on; a unit test checks both)."""

    __slots__ = ("_bins", "_sketch", "_zeros")

    def __init__(self) -> None:
        self._bins: dict[int, int] = {}
        self._zeros = 0
        self._sketch: DDSketch | None = None
        """Built from the bins by `quantile`; dropped by any change."""

    @property
    def count(self) -> int:
        return self._zeros + sum(self._bins.values())

    def add(self, value: float, weight: int = 1) -> None:
        """Add a value >= 0 (negative values have no meaning for durations and are ignored)."""
        if value < 0:
            return
        self._sketch = None
        if value == 0:
            self._zeros += weight
        else:
            key = _MAPPING.key(value)
            self._bins[key] = self._bins.get(key, 0) + weight

    def merge(self, other: QuantileSketch) -> None:
        self._sketch = None
        bins = self._bins
        for key, count in other._bins.items():
            bins[key] = bins.get(key, 0) + count
        self._zeros += other._zeros

    def copy(self) -> QuantileSketch:
        clone = QuantileSketch()
        clone._bins = dict(self._bins)
        clone._zeros = self._zeros
        return clone

    def quantile(self, q: Decimal) -> float | None:
        if not self.count:
            return None
        sketch = self._sketch
        if sketch is None:
            sketch = self._sketch = DDSketch(relative_accuracy=RELATIVE_ACCURACY)
            if self._zeros:
                sketch.add(0.0, self._zeros)
            for key, count in self._bins.items():
                sketch.add(_MAPPING.value(key), count)
        return sketch.get_quantile_value(float(q))

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
