"""Changelog records of bounded size: a large checkpoint goes as parts, replayed only whole."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from core_helpers import revenue_1m

from streams.core.log_records import Groups, encode, split

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z, a whole minute
LONG = "x" * 120  # ids near the contract's 128-character maximum


def _big_partition(make_partition, make_envelope, events: int = 3000):
    part = make_partition(dedupe_max_entries=10_000)
    for k in range(events):
        part.apply(
            make_envelope(
                event_id=f"{LONG}{k:06d}",
                at=T0 + k % 50,
                amount="1.25",
                region=f"r{k % 40}",
            )
        )
    return part


def _total(part) -> Decimal:
    return sum((v for cells in revenue_1m(part).values() for v in cells.values()), Decimal(0))


def _replay(make_partition, payloads: list[bytes]):
    fresh = make_partition(dedupe_max_entries=10_000)
    groups = Groups()
    for payload in payloads:
        for record in groups.feed(orjson.loads(payload)):
            fresh.restore(record)
    groups.finish()
    return fresh, groups


def test_a_checkpoint_too_large_for_one_record_goes_as_parts_that_rebuild_it(
    make_partition, make_envelope
):
    source = _big_partition(make_partition, make_envelope)
    record = source.checkpoint(next_offset=3000)
    whole = orjson.dumps(record)
    assert len(whole) > 400_000  # 3,000 ids of 126 characters: ~0.4 MB in one record

    payloads = encode(record, record_bytes=100_000)

    assert len(payloads) >= 4
    assert max(map(len, payloads)) < 100_000 + 1_000  # entries plus a small header
    parts = [orjson.loads(p) for p in payloads]
    assert [p["part"] for p in parts] == [[i, len(parts)] for i in range(len(parts))]
    assert {p["next_offset"] for p in parts} == {3000}
    fresh, groups = _replay(make_partition, payloads)
    assert revenue_1m(fresh) == revenue_1m(source)
    assert dict(fresh.seen.items()) == dict(source.seen.items())
    assert (fresh.next_offset, groups.dropped) == (3000, 0)
    assert _total(fresh) == Decimal("3750.00")  # 3,000 orders of 1.25


def test_a_record_that_fits_is_one_payload_without_a_part_marker(make_partition, make_envelope):
    source = make_partition()
    source.apply(make_envelope(event_id="e1", at=T0 + 5, amount="100.00"))
    record = source.checkpoint(next_offset=1)

    (payload,) = encode(record)

    assert orjson.loads(payload) == orjson.loads(orjson.dumps(record))
    assert "part" not in orjson.loads(payload)


def test_a_group_cut_short_by_a_crash_is_not_applied_and_the_batch_is_read_again(
    make_partition, make_envelope
):
    before = make_partition()
    before.apply(make_envelope(event_id="e0", at=T0 + 1, amount="10.00"))
    first = orjson.dumps(before.checkpoint(next_offset=1))
    source = _big_partition(make_partition, make_envelope, events=1500)
    big = encode(source.checkpoint(next_offset=1501), record_bytes=50_000)
    assert len(big) >= 3
    # The crash: the first two parts were written, the rest never; the next owner resumes at
    # offset 1 and writes a checkpoint of its own after the stump.
    after = orjson.dumps(before.checkpoint(next_offset=1))

    fresh, groups = _replay(make_partition, [first, *big[:2], after])

    assert fresh.next_offset == 1  # not 1501: the batch is read again
    assert "e0" in fresh.seen
    assert f"{LONG}000000" not in fresh.seen
    assert _total(fresh) == Decimal("10.00")
    assert groups.dropped == 2


def test_parts_out_of_order_or_without_their_start_are_dropped():
    def part(i: int, n: int) -> dict[str, Any]:
        return {"part": [i, n], "next_offset": 7}

    groups = Groups()
    assert groups.feed(part(1, 3)) == []  # no start: never applied
    assert groups.feed(part(0, 3)) == []
    assert groups.feed(part(2, 3)) == []  # index 1 missing: the group is broken
    assert groups.feed(part(0, 2)) == []
    assert groups.feed(part(1, 2)) == [part(0, 2), part(1, 2)]
    assert groups.feed({"next_offset": 8}) == [{"next_offset": 8}]
    assert groups.finish() == 3  # the stray part 1, the broken group's part 0, its part 2


def test_split_keeps_each_list_in_order_across_parts():
    record = {
        "v": 3,
        "next_offset": 5,
        "store": {"cells": [[i] for i in range(50)], "base": [], "dropped": [], "x": 1},
        "join": [["s", f"k{i}", i] for i in range(50)],
        "rates": [],
        "seen": [[f"id{i}", 0] for i in range(50)],
    }

    parts = split(record, record_bytes=200)

    assert len(parts) > 3
    assert all(p["store"]["x"] == 1 and p["v"] == 3 for p in parts)
    assert [c for p in parts for c in p["store"]["cells"]] == record["store"]["cells"]
    assert [j for p in parts for j in p["join"]] == record["join"]
    assert [s for p in parts for s in p["seen"]] == record["seen"]
