"""The series budget: values per dimension, combinations per KPI and series in total fold into
`other`, counted once per event; a restart folds as before."""

from __future__ import annotations

from streams.core.cardinality import OTHER, PARTS_PER_KIND, CardinalityGuard, series_weights
from streams.core.catalog import RATIO_KINDS
from streams.core.compiler import compile_catalog
from streams.core.partition_state import CHECKPOINT_VERSION

BU_REGION = ("business_unit", "region")
T0 = 1_709_294_400


def test_values_beyond_the_limit_fold_into_other_per_dimension() -> None:
    guard = CardinalityGuard(limit=2)
    names = BU_REGION
    assert guard.fold(names, ("a", "x")) == ("a", "x")
    assert guard.fold(names, ("b", "x")) == ("b", "x")
    assert guard.fold(names, ("c", "y")) == (OTHER, "y")  # a third unit; region has room
    assert guard.fold(names, ("a", "z")) == ("a", OTHER)  # known unit; a third region
    assert guard.fold(names, ("b", "y")) == ("b", "y")  # admitted values stay admitted
    assert dict(guard.folded) == {
        ("business_unit", "dimension_values"): 1,
        ("region", "dimension_values"): 1,
    }


def test_recovered_values_are_admitted_first() -> None:
    guard = CardinalityGuard(limit=1)
    guard.admit(("region",), ("emea",))
    assert guard.fold(("region",), ("amer",)) == (OTHER,)
    assert guard.fold(("region",), ("emea",)) == ("emea",)


def test_combinations_past_the_budget_fold_whole_into_other() -> None:
    guard = CardinalityGuard(limit=100, max_combinations=2)
    assert guard.fold(BU_REGION, ("a", "x")) == ("a", "x")
    assert guard.fold(BU_REGION, ("b", "y")) == ("b", "y")
    # each value is known, the pair is not: a third combination
    assert guard.fold(BU_REGION, ("a", "y")) == (OTHER, OTHER)
    assert guard.fold(BU_REGION, ("b", "y")) == ("b", "y")
    # another space has its own budget
    assert guard.fold(("cost_center",), ("cc-1",)) == ("cc-1",)
    assert dict(guard.folded) == {
        ("business_unit", "combinations"): 1,
        ("region", "combinations"): 1,
    }


def test_the_total_budget_counts_each_combination_at_its_series() -> None:
    # 10 series per (unit, region) pair and 3 per cost center; their `other`s are reserved:
    # 13 of 40 used, room for 27: two pairs (20), then one cost center (3), then nothing of 10.
    guard = CardinalityGuard(limit=100, max_series=40, weights={BU_REGION: 10, ("cost_center",): 3})
    assert guard.series == 13
    assert guard.fold(BU_REGION, ("a", "x")) == ("a", "x")
    assert guard.fold(BU_REGION, ("b", "x")) == ("b", "x")
    assert guard.fold(("cost_center",), ("cc-1",)) == ("cc-1",)
    assert guard.series == 36
    assert guard.fold(BU_REGION, ("c", "x")) == (OTHER, OTHER)
    assert guard.fold(("cost_center",), ("cc-2",)) == ("cc-2",)  # 3 more fit: 39
    assert guard.fold(("cost_center",), ("cc-3",)) == (OTHER,)
    assert guard.folded[("business_unit", "series")] == 1
    assert guard.folded[("cost_center", "series")] == 1


def test_weights_are_the_series_a_combination_can_add() -> None:
    # Per (business_unit, region): revenue, cogs, orders 3 x 4 windows = 12; six ratios with
    # numerator and denominator 6 x 3 x 4 = 72; cycle time p50, p95 2 x 4 = 8; four balances 4;
    # dso, dpo, dio with parts 3 x 3 = 9; cash conversion cycle 1: 106.
    # Opex's four dimensions: opex 4, operating margin (sums opex up) 3 x 4 = 12, budget
    # variance (per cost center, from opex) 3: 19. ROI with parts 3; budget variance 3.
    assert series_weights(compile_catalog()) == {
        BU_REGION: 106,
        (*BU_REGION, "cost_center", "category"): 19,
        ("initiative_id",): 3,
        ("cost_center",): 3,
    }


def test_folds_are_counted_once_per_event_not_per_measure(make_partition, make_envelope) -> None:
    # room for one unit, and for the pairs (u0, r0) and (other, r0)
    guard = CardinalityGuard(limit=1, max_combinations=2)
    part = make_partition(guard=guard)
    part.apply(make_envelope(at=T0, business_unit="u0", region="r0"))
    for i in range(1, 11):  # an order feeds revenue and orders: two measures, one event
        part.apply(make_envelope(at=T0, business_unit=f"u{i}", region="r0"))
    assert dict(guard.folded) == {("business_unit", "dimension_values"): 10}
    # (u1, r1) is past both: its unit is counted once, under the limit that folded it first
    part.apply(make_envelope(at=T0, business_unit="u1", region="r1"))
    assert dict(guard.folded) == {
        ("business_unit", "dimension_values"): 11,
        ("region", "dimension_values"): 1,
    }
    guard = CardinalityGuard(limit=10, max_combinations=1)
    part = make_partition(guard=guard)
    for i in range(4):
        part.apply(make_envelope(at=T0, business_unit=f"u{i}", region=f"r{i}"))
    assert dict(guard.folded) == {
        ("business_unit", "combinations"): 3,
        ("region", "combinations"): 3,
    }


def test_a_restart_folds_as_the_worker_did_before(make_partition, make_envelope) -> None:
    """Recovery rebuilds the guard from the changelog: events after it land in the cells they
    would have reached without the restart."""
    events = [
        make_envelope(at=T0 + i, business_unit=f"u{i % 7}", region=f"r{i % 5}") for i in range(60)
    ]
    later = [
        make_envelope(at=T0 + 60 + i, business_unit=f"u{i % 9}", region=f"r{i % 6}")
        for i in range(60)
    ]

    def guard() -> CardinalityGuard:
        return CardinalityGuard(limit=6, max_combinations=8, max_series=2000, weights=WEIGHTS)

    straight = make_partition(guard=guard())
    for event in events + later:
        straight.apply(event)

    before = make_partition(guard=guard())
    for event in events:
        before.apply(event)
    record = before.checkpoint(60)
    after = make_partition(guard=guard())
    after.restore(record)
    for event in later:
        after.apply(event)

    assert after.store.buckets == straight.store.buckets
    labels = {dims for accs in after.store.buckets.values() for _, dims in accs}
    assert (OTHER, OTHER) in labels  # the budget was reached: something folded
    assert len(labels - {(OTHER, OTHER)}) == 8


WEIGHTS = series_weights(compile_catalog())


def test_a_balance_kept_only_in_its_base_keeps_its_combination(make_partition) -> None:
    """A quiet pair whose business days all left the retention lives on in the balance base;
    recovery must admit it, or its next invoice would be counted apart from its balance."""
    part = make_partition(guard=CardinalityGuard(limit=10, max_combinations=1))
    part.restore(
        {
            "v": CHECKPOINT_VERSION,
            "next_offset": 1,
            "max_event_time": None,
            "first_event_time": None,
            "store": {
                "cells": [],
                "base": [["ar", ["quiet", "x"], "5"]],
                "dropped": [],
                "folded_through": None,
            },
            "join": [],
            "rates": [],
            "seen": [],
        }
    )
    assert part.guard is not None
    assert part.guard.fold(BU_REGION, ("new", "x")) == (OTHER, OTHER)  # the one slot is taken
    assert part.guard.fold(BU_REGION, ("quiet", "x")) == ("quiet", "x")


def test_weights_count_the_families_the_collector_exports() -> None:
    assert {kind for kind, parts in PARTS_PER_KIND.items() if parts == 3} == RATIO_KINDS
