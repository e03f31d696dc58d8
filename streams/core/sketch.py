"""Quantiles from DDSketch (the `ddsketch` library), mergeable across partitions and workers.

Guarantee: with relative accuracy 0.01, a reported quantile is within 1% of the exact value
`sorted(values)[floor(q * (n - 1))]` (for positive values; zero is kept exactly).
"""

from __future__ import annotations

from decimal import Decimal

from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)


class QuantileSketch:
    """Bin counts of `_MAPPING` (the changelog's form). A quantile is read from them as a
    `DDSketch` fed the values one by one reads it (`DDSketch.get_quantile_value` with
    `DenseStore.key_at_rank`, ddsketch 3.0: the rank `q (n - 1)` in float arithmetic, zeros
    first, then the first key whose running count exceeds the rest of the rank), without
    building one: its quantiles read only the bins' keys and counts, and
    `_MAPPING.key(_MAPPING.value(k)) == k` for every key (as `from_json` relies on). A unit test
    compares both, through merges, copies and the changelog's JSON."""

    __slots__ = ("_bins", "_zeros")

    def __init__(self) -> None:
        self._bins: dict[int, int] = {}
        self._zeros = 0

    @property
    def count(self) -> int:
        return self._zeros + sum(self._bins.values())

    def add(self, value: float, weight: int = 1) -> None:
        """Add a value >= 0 (negative values have no meaning for durations and are ignored)."""
        if value < 0:
            return
        if value == 0:
            self._zeros += weight
        else:
            key = _MAPPING.key(value)
            self._bins[key] = self._bins.get(key, 0) + weight

    def merge(self, other: QuantileSketch) -> None:
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
        count = self.count
        if not count:
            return None
        rank = float(q) * (float(count) - 1)
        if rank < self._zeros:
            return 0  # as DDSketch answers it (an int)
        rank -= self._zeros
        running = 0.0
        bins = self._bins
        for key in sorted(bins):
            running += bins[key]
            if running > rank:
                return _MAPPING.value(key)
        return _MAPPING.value(max(bins))

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
