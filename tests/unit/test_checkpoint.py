"""PartitionState checkpoint/restore: the write-ahead log record of one source partition."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from core_helpers import revenue_1m, revenue_at, revenue_cells

from streams.core.measures import MeasureStore
from streams.errors import ChangelogError, InvalidEvent

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z, a whole minute
LISTS = ("join", "rates", "seen")
RETAIL_EU = ("retail", "eu")
WHOLESALE_US = ("wholesale", "us")


def over_the_wire(record: dict[str, Any]) -> dict[str, Any]:
    """What the changelog topic gives back: the record through orjson and out again."""
    return orjson.loads(orjson.dumps(record))


@pytest.fixture
def source(make_partition, make_envelope):
    """A partition after one batch of 4 events, expired as the worker does before checkpoints."""
    part = make_partition()
    for event in [
        make_envelope(event_id="e1", at=T0 + 5, amount="100.00"),
        make_envelope(
            event_id="e2",
            at=T0 + 10,
            amount="20.00",
            currency="USD",
            business_unit="wholesale",
            region="us",
        ),
        make_envelope(event_id="e3", at=T0 + 65, type="refund_issued", amount="2.50"),
        make_envelope(event_id="e4", at=T0 + 70, type="feedback_submitted"),
    ]:
        part.apply(event)
    # watermark T0 + 65; oldest accepting start_of(T0 + 35) = T0 and newest closed [T0, T0 + 60),
    # so nothing is old enough to expire yet.
    part.expire(part.watermark.value)
    return part


def test_restore_rebuilds_revenue_watermark_and_dedupe_memory(source, make_partition):
    record = over_the_wire(source.checkpoint(next_offset=4))
    fresh = make_partition()

    fresh.restore(record)

    assert revenue_1m(fresh) == {
        T0: {RETAIL_EU: Decimal("100.00"), WHOLESALE_US: Decimal("18.00")},  # 20.00 USD * 0.9
        T0 + 60: {RETAIL_EU: Decimal("-2.50")},
    }
    assert revenue_1m(fresh) == revenue_1m(source)
    assert fresh.watermark.max_event_time == T0 + 70
    assert fresh.watermark.value == T0 + 65
    assert dict(fresh.seen.items()) == {"e1": T0, "e2": T0, "e3": T0 + 60, "e4": T0 + 60}
    assert fresh.next_offset == 4


def test_a_restored_partition_rejects_ids_it_already_counted(source, make_partition, make_envelope):
    fresh = make_partition()
    fresh.restore(over_the_wire(source.checkpoint(next_offset=4)))

    with pytest.raises(InvalidEvent) as caught:
        fresh.apply(make_envelope(event_id="e1", at=T0 + 5, amount="100.00"))

    assert caught.value.reason == "duplicate"
    assert revenue_at(fresh, T0, RETAIL_EU) == Decimal("100.00")


def test_restoring_the_same_records_twice_changes_nothing(source, make_partition, make_envelope):
    first = over_the_wire(source.checkpoint(next_offset=4))
    source.apply(make_envelope(event_id="e5", at=T0 + 66, amount="1.00"))
    second = over_the_wire(source.checkpoint(next_offset=5))
    fresh = make_partition()

    fresh.restore(first)
    fresh.restore(second)
    fresh.restore(first)  # a replay from the start of the log
    fresh.restore(second)

    assert revenue_1m(fresh) == {
        T0: {RETAIL_EU: Decimal("100.00"), WHOLESALE_US: Decimal("18.00")},
        T0 + 60: {RETAIL_EU: Decimal("-1.50")},  # -2.50 + 1.00
    }
    assert fresh.watermark.max_event_time == T0 + 70
    assert dict(fresh.seen.items()) == {
        "e1": T0,
        "e2": T0,
        "e3": T0 + 60,
        "e4": T0 + 60,
        "e5": T0 + 60,
    }
    assert fresh.next_offset == 5


def test_a_checkpoint_holds_only_what_changed_since_the_previous_one(source, make_envelope):
    first = over_the_wire(source.checkpoint(next_offset=4))
    assert (first["v"], first["next_offset"], first["max_event_time"]) == (3, 4, T0 + 70)
    assert revenue_cells(first) == [
        [T0, "retail", "eu", "100.00"],
        [T0, "wholesale", "us", "18.00"],
        [T0 + 60, "retail", "eu", "-2.50"],
    ]
    assert first["seen"] == [["e1", T0], ["e2", T0], ["e3", T0 + 60], ["e4", T0 + 60]]

    source.apply(make_envelope(event_id="e5", at=T0 + 66, amount="1.00"))
    second = over_the_wire(source.checkpoint(next_offset=5))

    # One changed key, as an absolute value (-2.50 + 1.00), and one new id.
    assert (second["next_offset"], second["max_event_time"]) == (5, T0 + 70)  # T0+66: no raise
    assert revenue_cells(second) == [[T0 + 60, "retail", "eu", "-1.50"]]
    assert second["seen"] == [["e5", T0 + 60]]

    third = over_the_wire(source.checkpoint(next_offset=5))
    assert (third["store"]["cells"], third["seen"]) == ([], [])


def test_checkpoint_of_an_empty_partition_has_no_watermark(make_partition):
    record = over_the_wire(make_partition().checkpoint(next_offset=0))

    assert (record["max_event_time"], record["seen"]) == (None, [])
    assert record["store"] == {"cells": [], "base": [], "dropped": [], "folded_through": None}
    fresh = make_partition()
    fresh.restore(record)
    assert not fresh.has_data
    assert fresh.next_offset == 0


def test_restore_refuses_an_unknown_record_version(source, make_partition):
    record = over_the_wire(source.checkpoint(next_offset=4))
    record["v"] = 99

    with pytest.raises(ChangelogError, match="version 99"):
        make_partition().restore(record)


def test_restoring_twice_does_not_count_evictions_twice(make_partition, make_envelope):
    # A checkpoint carries only the ids still remembered, so replaying it (once or twice)
    # neither resurrects the evicted "e0" nor counts evictions the source already counted.
    source = make_partition(dedupe_max_entries=2)
    for k in range(3):
        source.apply(make_envelope(event_id=f"e{k}", at=T0 + k, amount="1.00"))
    assert source.seen.evicted == 1  # 3 ids, room for 2: "e0" evicted
    record = over_the_wire(source.checkpoint(next_offset=3))
    fresh = make_partition(dedupe_max_entries=2)

    fresh.restore(record)
    fresh.restore(record)

    assert dict(fresh.seen.items()) == {"e1": T0, "e2": T0}
    assert fresh.seen.evicted == 0


def test_a_snapshot_alone_rebuilds_the_partition_in_records_of_bounded_size(source, make_partition):
    source.checkpoint(next_offset=4)  # the log so far: nothing pending after this
    records = [over_the_wire(r) for r in source.snapshot(next_offset=4, record_bytes=300)]

    def entry_bytes(record: dict[str, Any]) -> int:
        store = record["store"]
        lists = [store["cells"], store["base"], store["dropped"], *(record[n] for n in LISTS)]
        return sum(len(orjson.dumps(entry)) for entries in lists for entry in entries)

    assert len(records) > 1  # 4 ids and the cells of 4 events: more than 300 bytes
    assert max(map(entry_bytes, records)) <= 300
    assert [r["snapshot"] for r in records] == [[i, len(records)] for i in range(len(records))]
    assert {r["next_offset"] for r in records} == {4}
    fresh = make_partition()
    for record in records:  # the log cut just before the snapshot
        fresh.restore(record)
    assert revenue_1m(fresh) == revenue_1m(source)
    assert dict(fresh.seen.items()) == {"e1": T0, "e2": T0, "e3": T0 + 60, "e4": T0 + 60}
    assert fresh.store.buckets == source.store.buckets
    assert fresh.next_offset == 4


def test_a_snapshot_carries_how_far_days_were_folded():
    store = MeasureStore()
    key = ("revenue", ("retail", "eu"))
    store.add(("1d", 0), key, Decimal("5.00"))
    store.drop(("1d", 0), fold=True)  # day 0 now only in the running total
    store.add(("1d", 86_400), key, Decimal("1.00"))
    store.changes()  # written earlier, then cut from the log

    fresh = MeasureStore()
    fresh.restore(orjson.loads(orjson.dumps(store.everything())))

    assert (fresh.folded_through, fresh.base, fresh.buckets) == (0, store.base, store.buckets)
