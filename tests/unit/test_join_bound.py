"""The cycle-time join's own memory bound (PULSE_JOIN_MAX_ENTRIES): what it drops, and the count.

At 500 events/s about 300 orders start per second and each is held for the join's 30-day TTL, so
under load this bound, not the TTL, caps the worker's memory; it is no longer the dedupe bound.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from test_metrics import scrape

from streams.core import PartitionState, WorkerState
from streams.core.join import TimeJoin
from streams.errors import InvalidEvent
from streams.export.metrics import build_registry

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z, a whole minute


def test_past_its_bound_the_join_forgets_the_oldest_start_and_counts_it() -> None:
    join = TimeJoin(ttl=3600, max_entries=2)
    for key, at in (("a", 0.0), ("b", 1.0), ("c", 2.0)):
        assert join.start(key, at) == []

    assert join.evicted == 1
    assert list(join.started) == ["b", "c"]
    assert join.end("cycle_time", "b", 31.0, ()) == 30.0  # 31 - 1
    assert join.end("cycle_time", "a", 40.0, ()) is None  # forgotten: it waits for its start
    assert len(join) == 3  # starts b and c, and a's waiting end


def cycle_time_samples(part: PartitionState) -> list[tuple[int, float | None]]:
    """The cycle times added to 1-minute windows: (count, p50 in seconds) per window."""
    out = []
    for (window, _), accs in part.store.buckets.items():
        for (measure, _), sketch in accs.items():
            if window == "1m" and measure == "cycle_time":
                out.append((sketch.count, sketch.quantile(Decimal("0.5"))))  # type: ignore[union-attr]
    return out


def orders_then_deliveries(make_envelope: Callable[..., Any], part: PartitionState) -> None:
    for k in range(3):  # o-0, o-1, o-2 at T0, T0 + 1, T0 + 2
        part.apply(make_envelope(order_id=f"o-{k}", at=T0 + k))
    for k in (0, 2):  # delivered 10 s after T0 + 2
        part.apply(
            make_envelope(type="shipment_delivered", order_id=f"o-{k}", at=T0 + 12, shipment_id="s")
        )


def test_the_join_has_its_own_bound_apart_from_dedupe(
    make_partition: Callable[..., PartitionState], make_envelope: Callable[..., Any]
) -> None:
    part = make_partition(join_max_entries=2, dedupe_max_entries=1000)

    orders_then_deliveries(make_envelope, part)

    # o-0 was the oldest of three starts with room for two: its delivery has no cycle time;
    # o-2's is 12 - 2 = 10 s. No event id was forgotten.
    assert part.join.evicted == 1
    assert part.seen.evicted == 0
    assert [(count, round(p50)) for count, p50 in cycle_time_samples(part)] == [(1, 10)]


def test_join_entries_and_evictions_are_exported(
    make_state: Callable[..., WorkerState], make_envelope: Callable[..., Any]
) -> None:
    state = make_state(join_max_entries=2)
    orders_then_deliveries(make_envelope, state.assign(("pulse.events", 0)))

    samples = scrape(build_registry(state))

    assert samples["pulse_join_evictions_total"] == {(): 1}
    assert samples["pulse_join_entries"] == {(): 3}  # starts o-1 and o-2, o-0's waiting end
    assert samples["pulse_join_unmatched_total"] == {(): 0}  # o-0's delivery may still match


def test_an_end_whose_window_is_final_is_dropped_as_unmatched() -> None:
    join = TimeJoin(ttl=3600, max_entries=10)
    assert join.end("cycle_time", "x", 10.0, ()) is None
    assert join.end("cycle_time", "y", 100.0, ()) is None

    join.expire_before(50.0, ends_final_before=60.0)  # the TTL alone would keep both

    assert list(join.waiting) == ["y"]
    assert join.unmatched == 1


def test_a_delivery_without_its_order_waits_only_until_its_window_is_final(
    make_partition: Callable[..., PartitionState], make_envelope: Callable[..., Any]
) -> None:
    # Watermark delay 5 s, lateness 30 s (the unit-test config).
    part = make_partition()
    part.apply(
        make_envelope(type="shipment_delivered", order_id="o-x", at=T0 + 10, shipment_id="s")
    )
    part.apply(make_envelope(order_id="o-y", at=T0 + 200))  # watermark T0 + 195
    part.apply(
        make_envelope(type="shipment_delivered", order_id="o-z", at=T0 + 150, shipment_id="s")
    )

    part.expire(part.watermark.value)

    # Minutes before start_of(T0 + 195 - 30) = T0 + 120 are final: o-x's delivery (T0 + 10)
    # could never get a cycle time, o-z's (T0 + 150) still can.
    assert list(part.join.waiting) == ["o-z"]
    assert part.join.unmatched == 1
    # Nothing lost: o-x's order is itself too late now; o-z's still matches, 150 - 140 = 10 s.
    with pytest.raises(InvalidEvent, match="late"):
        part.apply(make_envelope(order_id="o-x", at=T0 + 5))
    part.apply(make_envelope(order_id="o-z", at=T0 + 140))
    assert [(count, round(p50)) for count, p50 in cycle_time_samples(part)] == [(1, 10)]
