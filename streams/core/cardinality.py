"""Bounded label values: past a per-dimension limit, new values are folded into `other`.

Label values come only from declared dimensions, and each dimension admits at most `limit`
distinct values per worker; later ones count as `other` (and are counted), so one misbehaving
publisher cannot explode the number of series in Prometheus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

OTHER = "other"


class CardinalityGuard:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.folded: Counter[str] = Counter()
        self._admitted: dict[str, set[str]] = {}
        self._known: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
        """Whole (names, values) pairs already admitted: the common case is one set lookup."""

    def fold(self, names: tuple[str, ...], values: tuple[str, ...]) -> tuple[str, ...]:
        """`values` with every value beyond its dimension's limit replaced by `other`."""
        if (names, values) in self._known:
            return values
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
            self.folded[name] += 1
        if folded is None:
            self._known.add((names, values))
            return values
        return tuple(folded)

    def dimensions(self) -> list[str]:
        """Every dimension the guard has seen a value of (folded or not)."""
        return sorted(self._admitted)

    def admit(self, names: Iterable[str], values: Iterable[str]) -> None:
        """Re-admit values found in recovered state, so existing series keep their labels."""
        for name, value in zip(names, values, strict=True):
            admitted = self._admitted.setdefault(name, set())
            if value != OTHER and len(admitted) < self.limit:
                admitted.add(value)
