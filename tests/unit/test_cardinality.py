"""Label values past the per-dimension limit fold into `other`, and are counted."""

from __future__ import annotations

from streams.core.cardinality import OTHER, CardinalityGuard


def test_values_beyond_the_limit_fold_into_other_per_dimension() -> None:
    guard = CardinalityGuard(limit=2)
    names = ("business_unit", "region")
    assert guard.fold(names, ("a", "x")) == ("a", "x")
    assert guard.fold(names, ("b", "x")) == ("b", "x")
    assert guard.fold(names, ("c", "y")) == (OTHER, "y")  # a third unit; region has room
    assert guard.fold(names, ("a", "z")) == ("a", OTHER)  # known unit; a third region
    assert guard.fold(names, ("b", "y")) == ("b", "y")  # admitted values stay admitted
    assert dict(guard.folded) == {"business_unit": 1, "region": 1}


def test_recovered_values_are_admitted_first() -> None:
    guard = CardinalityGuard(limit=1)
    guard.admit(("region",), ("emea",))
    assert guard.fold(("region",), ("amer",)) == (OTHER,)
    assert guard.fold(("region",), ("emea",)) == ("emea",)
