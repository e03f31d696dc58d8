"""Final window values stay complete when partitions progress unevenly and after a restart.

Found by the fault suite (tests/fault), pinned here without a broker:
- minutes made up the 5m and 1h windows, and a partition far ahead dropped them once the hour
  was final for *it*, before the worker (the slowest partition) published the hour;
- a partition with an unread backlog did not hold back the worker's watermark, so the first
  partition read closed everyone's windows;
- starting over on state whose oldest business days were folded republished those days'
  balances and 30-day KPIs from the folded sums.

Settings from conftest unless overridden: UTC, 5 s watermark delay, 30 s lateness.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from streams.core import NO_WATERMARK, Finalizer, KpiValue, PartitionState, WorkerState
from streams.worker.health import EMPTY_HOLD_S, Health

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z, a whole hour
P0, P1 = ("pulse.events", 0), ("pulse.events", 1)
DAY = 86_400


def due(finalizer: Finalizer, state: WorkerState) -> list[KpiValue]:
    """What the worker publishes after a batch: the values final at its watermark."""
    parts = [p for p in state.partitions.values() if p.has_data]
    return finalizer.final_values(
        [p.store for p in parts],
        state.watermark(),
        min(p.first_event_time for p in parts),
        max(p.watermark.max_event_time for p in parts),
    )


def after_batch(finalizer: Finalizer, state: WorkerState) -> list[KpiValue]:
    values = due(finalizer, state)
    for part in state.partitions.values():
        part.expire(state.watermark())
    return values


def test_minutes_stay_until_their_hour_is_final_for_the_worker(make_state, make_envelope):
    state = make_state(allowed_lateness=7200.0)  # longer than the hour of minutes kept
    finalizer = Finalizer(state.config.catalog, state.config.windows, 7200.0)
    p0, p1 = state.assign(P0), state.assign(P1)
    p0.apply(make_envelope(at=T0 + 10, amount="100.00"))
    p1.apply(make_envelope(at=T0 + 20, amount="10.00"))
    p1.apply(make_envelope(at=T0 + 3 * 3600, amount="1.00"))
    p0.apply(make_envelope(at=T0 + 5 * 3600, amount="1.00"))
    values = after_batch(finalizer, state)  # watermark T0 + 10795: the first hour still open
    p1.apply(make_envelope(at=T0 + 5 * 3600, amount="1.00"))
    values += after_batch(finalizer, state)  # watermark T0 + 17995: the first hour is final

    first_hour = [v.value for v in values if (v.kpi, v.window, v.start) == ("revenue", "1h", T0)]
    assert first_hour == [Decimal("110.00")]  # P0's 100.00 included, once


def test_a_partition_with_an_unread_backlog_holds_back_the_watermark(make_state, make_envelope):
    state = make_state()
    p0, p1 = state.assign(P0), state.assign(P1)
    p1.unread = True  # assigned with a backlog, nothing read yet
    p0.apply(make_envelope(at=T0 + 3600))

    assert state.watermark() == NO_WATERMARK

    p1.unread = False  # read to its end: it was empty
    assert state.watermark() == T0 + 3600 - 5


def test_a_partition_without_data_holds_the_watermark_a_moment_after_another_got_its_first(
    make_state, make_envelope
):
    """A bulk load into empty partitions reaches them milliseconds apart: read to its end, an
    empty partition must not let the first one's events close its windows."""
    state = make_state()
    p0, p1 = state.assign(P0), state.assign(P1)
    health = Health(liveness_timeout=60.0, batch_max_records=5000)
    health.hold_empty(state, now=100.0)  # both empty since the start
    assert health.released(100.0)
    p1.unread = False  # read to its end (what `refresh_lag` does once released)

    p0.apply(make_envelope(at=T0 + 3600))  # the load reaches P0 first
    health.hold_empty(state, now=101.0)

    assert p1.unread
    assert state.watermark() == NO_WATERMARK
    assert not health.released(101.0 + EMPTY_HOLD_S - 0.01)
    assert health.released(101.0 + EMPTY_HOLD_S)
    p1.unread = False  # still empty after the hold: released
    assert state.watermark() == T0 + 3600 - 5


def test_starting_over_on_folded_days_republishes_no_day_it_cannot_compute(
    make_state, make_envelope
):
    state = make_state()
    part = state.assign(P0)
    finalizer = Finalizer(state.config.catalog, state.config.windows, 30.0)
    published: dict[tuple[Any, ...], Decimal] = {}
    changelog: list[bytes] = []
    for day in range(40):  # inventory issued every day: a balance and COGS on each
        event = make_envelope(type="inventory_issued", at=T0 + day * DAY, amount="4.00")
        part.apply(event)
        for v in after_batch(finalizer, state):
            published[(v.kpi, v.window, v.start, v.labels)] = v.value
        changelog.append(orjson.dumps(part.checkpoint(day + 1)))
    assert part.store.folded_through is not None  # the oldest days left the retention

    restored: PartitionState = state.new_partition()
    for record in changelog:
        restored.restore(orjson.loads(record))
    assert restored.store.folded_through == part.store.folded_through
    again = Finalizer(state.config.catalog, state.config.windows, 30.0).final_values(
        [restored.store],
        restored.watermark.value,
        restored.first_event_time,
        restored.watermark.max_event_time,
    )

    days = [v for v in again if v.window in ("balance", "30d")]
    assert days  # the recent days are published again ...
    for v in days:  # ... each as it was the first time
        assert v.value == published[(v.kpi, v.window, v.start, v.labels)], (v.kpi, v.start)
