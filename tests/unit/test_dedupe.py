"""The dedupe memory: bounded, expiring by event-time bucket, and wired into PartitionState."""

from __future__ import annotations

from decimal import Decimal

import pytest
from core_helpers import revenue_1m, revenue_at

from streams.core import Deduper
from streams.errors import InvalidEvent

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z, a whole minute


def test_a_remembered_id_is_a_duplicate():
    seen = Deduper(max_entries=10)
    seen.add("a", bucket=0)

    assert "a" in seen
    assert "b" not in seen
    assert len(seen) == 1


def test_expire_before_forgets_only_older_buckets():
    seen = Deduper(max_entries=10)
    seen.add("a", bucket=0)
    seen.add("b", bucket=60)
    seen.add("c", bucket=120)
    seen.add("d", bucket=120)

    seen.expire_before(120)  # strictly older than 120: buckets 0 and 60

    assert dict(seen.items()) == {"c": 120, "d": 120}
    assert "a" not in seen
    assert "b" not in seen
    assert seen.evicted == 0  # expiry is not eviction


def test_max_entries_evicts_the_oldest_and_counts_it():
    seen = Deduper(max_entries=2)
    seen.add("a", bucket=0)
    seen.add("b", bucket=60)
    assert seen.evicted == 0

    seen.add("c", bucket=120)  # 3 > 2: "a" goes
    assert dict(seen.items()) == {"b": 60, "c": 120}
    assert seen.evicted == 1

    seen.add("d", bucket=120)  # "b" goes
    assert dict(seen.items()) == {"c": 120, "d": 120}
    assert seen.evicted == 2


def test_an_evicted_id_leaves_no_trace_in_its_bucket():
    seen = Deduper(max_entries=1)
    seen.add("a", bucket=0)
    seen.add("b", bucket=0)  # evicts "a" from bucket 0

    seen.expire_before(60)  # drops bucket 0, which now holds only "b"

    assert len(seen) == 0
    seen.add("a", bucket=60)  # forgotten ids can be learned again
    assert dict(seen.items()) == {"a": 60}
    assert seen.evicted == 1


def test_a_duplicate_event_id_is_rejected_and_does_not_change_revenue(
    make_partition, make_envelope
):
    part = make_partition()
    part.apply(make_envelope(event_id="order-1", at=T0 + 1, amount="10.00"))

    # Same id, different content and a later time: still the same event, counted once.
    for resend in [
        make_envelope(event_id="order-1", at=T0 + 1, amount="10.00"),
        make_envelope(event_id="order-1", at=T0 + 50, amount="99.00"),
    ]:
        with pytest.raises(InvalidEvent) as caught:
            part.apply(resend)
        assert caught.value.reason == "duplicate"

    assert revenue_1m(part) == {T0: {("retail", "eu"): Decimal("10.00")}}
    assert part.watermark.max_event_time == T0 + 1  # the duplicate's T0 + 50 was not observed
    assert len(part.seen) == 1


def test_a_resend_after_its_id_expired_is_late_not_counted_again(make_partition, make_envelope):
    part = make_partition()  # delay 5, lateness 30
    part.apply(make_envelope(event_id="order-1", at=T0 + 1, amount="10.00"))
    part.apply(make_envelope(event_id="order-2", at=T0 + 200, amount="1.00"))
    part.expire(part.watermark.value)
    # watermark T0 + 195; oldest accepting window start_of(T0 + 165) = T0 + 120 > T0: forgotten
    assert "order-1" not in part.seen

    with pytest.raises(InvalidEvent) as caught:
        part.apply(make_envelope(event_id="order-1", at=T0 + 1, amount="10.00"))

    assert caught.value.reason == "late"
    assert revenue_at(part, T0, ("retail", "eu")) == Decimal("10.00")
