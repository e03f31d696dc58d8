"""Measure accumulators of one source partition, kept per window instance.

Layout: `buckets[(window, start)][(measure, dims)] = accumulator`, where the accumulator is a
`Decimal` (sums), an `int` (counts), a `Latest` register (budgets; `LatestBy` for budgets
folded into `other`) or a `QuantileSketch`. Whole
window instances expire at once. Business-day buckets that leave the retention are folded into
`base`, so running balances stay exact over any history.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

from streams.core.sketch import QuantileSketch

Dims: TypeAlias = tuple[str, ...]
Key: TypeAlias = tuple[str, Dims]
"""(measure name, dimension values in the measure's order)."""
BucketId: TypeAlias = tuple[str, int]
"""(window name, window start)."""
FOLDED_WINDOW = "1d"
"""The window whose buckets are folded into `base` when they leave the retention."""


@dataclass(frozen=True, slots=True)
class Latest:
    """A last-write-wins register ordered by event time (ties: the later arrival wins)."""

    at: float
    value: Decimal

    def newer(self, other: Latest) -> Latest:
        return other if other.at >= self.at else self


SELF = "="
"""The origin of a plain `Latest` when it meets a `LatestBy`: the key's own dimension values."""


@dataclass(frozen=True, slots=True)
class LatestBy:
    """Latest registers of several origins kept under one key: the budgets of cost centers the
    cardinality limit folded into `other`. Each origin (the dimension values before folding,
    joined by `|`) keeps its own latest value; the key's value is their sum, so folded budgets
    add up per period (docs/kpi-semantics.md) as their actuals do."""

    registers: tuple[tuple[str, Latest], ...]
    """(origin, register), sorted by origin."""

    @property
    def value(self) -> Decimal:
        return sum((latest.value for _, latest in self.registers), Decimal(0))

    def newer(self, other: Latest | LatestBy) -> LatestBy:
        merged = dict(self.registers)
        incoming = other.registers if isinstance(other, LatestBy) else ((SELF, other),)
        for origin, latest in incoming:
            current = merged.get(origin)
            merged[origin] = latest if current is None else current.newer(latest)
        return LatestBy(tuple(sorted(merged.items())))


def combine_latest(left: Latest | LatestBy, right: Latest | LatestBy) -> Latest | LatestBy:
    """Two registers of one key: the newer one, per origin once either is a `LatestBy`."""
    if isinstance(left, LatestBy):
        return left.newer(right)
    if isinstance(right, LatestBy):
        return right.newer(left)
    return left.newer(right)


Acc: TypeAlias = Decimal | int | Latest | LatestBy | QuantileSketch


def merge_acc(left: Acc | None, right: Acc) -> Acc:
    """Combine two accumulators of one measure (from two partitions, or an update)."""
    if left is None:
        return right.copy() if isinstance(right, QuantileSketch) else right
    if isinstance(left, QuantileSketch):
        merged = left.copy()
        merged.merge(right)  # type: ignore[arg-type]
        return merged
    if isinstance(left, Latest | LatestBy):
        return combine_latest(left, right)  # type: ignore[arg-type]
    return left + right  # type: ignore[operator]


class MeasureStore:
    def __init__(self) -> None:
        self.buckets: dict[BucketId, dict[Key, Acc]] = {}
        self.base: dict[Key, Decimal] = {}
        self.folded_through: int | None = None
        """Start of the newest business day folded into `base` (its own sums are gone: rows
        that need them cannot be computed again)."""
        # Keys changed since the last `changes()`, per bucket (hashing the key alone is cheaper
        # than hashing (bucket, key) on every add).
        self._dirty: dict[BucketId, set[Key]] = {}
        self._dirty_base: set[Key] = set()
        self.restated: set[BucketId] = set()
        """Period windows (`1mo`, `fp`) already final that an event changed since the finalizer
        last looked (`streams.core.restatements`)."""

    def _cell(self, bucket: BucketId) -> tuple[dict[Key, Acc], set[Key]]:
        accs = self.buckets.get(bucket)
        if accs is None:
            accs = self.buckets[bucket] = {}
        dirty = self._dirty.get(bucket)
        if dirty is None:
            dirty = self._dirty[bucket] = set()
        return accs, dirty

    def add(self, bucket: BucketId, key: Key, value: Decimal | int) -> None:
        # The hot path: `_cell` inlined.
        accs = self.buckets.get(bucket)
        if accs is None:
            accs = self.buckets[bucket] = {}
            self._dirty[bucket] = set()
        accs[key] = accs.get(key, 0) + value  # type: ignore[operator]
        dirty = self._dirty.get(bucket)
        if dirty is None:
            dirty = self._dirty[bucket] = set()
        dirty.add(key)

    def put_latest(self, bucket: BucketId, key: Key, value: Latest | LatestBy) -> None:
        accs, dirty = self._cell(bucket)
        current = accs.get(key)
        accs[key] = value if current is None else combine_latest(current, value)  # type: ignore[arg-type]
        dirty.add(key)

    def add_sample(self, bucket: BucketId, key: Key, value: float) -> None:
        accs, dirty = self._cell(bucket)
        sketch = accs.get(key)
        if sketch is None:
            sketch = accs[key] = QuantileSketch()
        sketch.add(value)  # type: ignore[union-attr]
        dirty.add(key)

    def drop(self, bucket: BucketId, *, fold: bool) -> None:
        """Forget a window instance; with `fold`, keep its sums in `base` (balances)."""
        accs = self.buckets.pop(bucket, {})
        self._dirty.setdefault(bucket, set())  # so the changelog says it was dropped
        if fold:
            self._folded(bucket)
            for key, acc in accs.items():
                if isinstance(acc, Decimal):
                    self.base[key] = self.base.get(key, Decimal(0)) + acc
                    self._dirty_base.add(key)

    def _folded(self, bucket: BucketId) -> None:
        if self.folded_through is None or bucket[1] > self.folded_through:
            self.folded_through = bucket[1]

    def windows(self, name: str) -> Iterator[int]:
        return (start for (window, start) in self.buckets if window == name)

    # --- changelog ---------------------------------------------------------------------------

    def changes(self) -> dict[str, Any]:
        """Absolute values of everything changed since the previous call (JSON-ready)."""
        cells = []
        for bucket, keys in sorted(self._dirty.items()):
            accs = self.buckets.get(bucket, {})
            for key in sorted(keys):
                acc = accs.get(key)
                if acc is not None:
                    cells.append([bucket[0], bucket[1], key[0], list(key[1]), encode_acc(acc)])
        dropped = sorted(b for b in self._dirty if b not in self.buckets)
        base = [[k[0], list(k[1]), str(self.base[k])] for k in sorted(self._dirty_base)]
        self._dirty = {}
        self._dirty_base = set()
        return {
            "cells": cells,
            "base": base,
            "dropped": [list(b) for b in dropped],
            "folded_through": self.folded_through,
        }

    def everything(self) -> dict[str, Any]:
        """`changes()` with every cell and base sum in it (drops since the last call too):
        replayed alone or after the records before it, it gives the store as it is."""
        for bucket, accs in self.buckets.items():
            self._dirty.setdefault(bucket, set()).update(accs)
        self._dirty_base.update(self.base)
        return self.changes()

    def restore(self, changes: dict[str, Any]) -> None:
        for window, start, measure, dims, encoded in changes["cells"]:
            bucket = (window, int(start))
            self.buckets.setdefault(bucket, {})[(measure, tuple(dims))] = decode_acc(encoded)
        for window, start in changes["dropped"]:
            self.buckets.pop((window, int(start)), None)
            if window == FOLDED_WINDOW:  # only business days are ever folded
                self._folded((window, int(start)))
        for measure, dims, value in changes["base"]:
            self.base[(measure, tuple(dims))] = Decimal(value)
        folded = changes.get("folded_through")  # absent in records of earlier versions
        if folded is not None:
            self._folded((FOLDED_WINDOW, int(folded)))


def encode_acc(acc: Acc) -> Any:
    """One accumulator as JSON (the changelog and the partials topic)."""
    if isinstance(acc, Decimal):
        return {"d": str(acc)}
    if isinstance(acc, Latest):
        return {"l": [acc.at, str(acc.value)]}
    if isinstance(acc, LatestBy):
        return {"lb": [[origin, r.at, str(r.value)] for origin, r in acc.registers]}
    if isinstance(acc, QuantileSketch):
        return {"q": acc.to_json()}
    return {"n": acc}


def decode_acc(data: dict[str, Any]) -> Acc:
    if "d" in data:
        return Decimal(data["d"])
    if "l" in data:
        at, value = data["l"]
        return Latest(float(at), Decimal(value))
    if "lb" in data:
        return LatestBy(tuple((str(o), Latest(float(at), Decimal(v))) for o, at, v in data["lb"]))
    if "q" in data:
        return QuantileSketch.from_json(data["q"])
    return int(data["n"])
