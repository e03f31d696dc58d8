"""The watermark follows the slowest active source of a partition, with event-time idleness.

Settings of `make_partition`: 5 s watermark delay, 30 s allowed lateness, and a source idle once it
is more than 300 s (the default) behind the newest source of its partition.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import orjson
import pytest
from core_helpers import revenue_1m

from streams.core import NO_WATERMARK, Watermark
from streams.core.windows import MAX_SOURCES
from streams.errors import InvalidEvent
from streams.offline.backtest import run_backtest
from streams.settings import Settings

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z, a whole minute


def over_the_wire(record: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(record))


def total_revenue(part) -> Decimal:
    return sum((v for window in revenue_1m(part).values() for v in window.values()), Decimal(0))


def test_a_publisher_three_minutes_behind_is_counted_when_one_event_is_stamped_now(
    make_partition, make_envelope
):
    # The measured case: a publisher sends 1,000 events 3 minutes behind real time (one every
    # 0.18 s of event time, from T0 - 180), and after its first event another source sends one
    # event stamped now (T0). One watermark pushed by the fastest event made all of them late.
    part = make_partition()
    late_publisher = [
        make_envelope(
            event_id=f"slow-{i}", source="erp-slow", at=T0 - 180 + i * 0.18, amount="1.00"
        )
        for i in range(1000)
    ]
    part.apply(late_publisher[0])
    part.apply(make_envelope(event_id="now", source="oms-eu", at=T0, amount="10.00"))
    for event in late_publisher[1:]:
        part.apply(event)  # raises InvalidEvent("late") if one is judged late

    # By hand: 1,000 x 1.00 + 10.00, and the watermark is the slow publisher's newest event
    # (T0 - 180 + 999 x 0.18 = T0 - 0.18) less the 5 s delay.
    assert total_revenue(part) == Decimal("1010.00")
    assert part.watermark.value == pytest.approx(T0 - 0.18 - 5)


def test_an_idle_source_holds_windows_back_only_until_it_is_300_s_behind(
    make_partition, make_envelope
):
    part = make_partition()
    part.apply(make_envelope(source="pmo", at=T0, amount="1.00"))  # one event, then silence
    part.apply(make_envelope(source="oms-eu", at=T0 + 200, amount="1.00"))
    assert part.watermark.value == T0 - 5  # pmo may still send events from T0 on

    part.apply(make_envelope(source="oms-eu", at=T0 + 300, amount="1.00"))
    assert part.watermark.value == T0 - 5  # exactly 300 s behind: still active

    part.apply(make_envelope(source="oms-eu", at=T0 + 301, amount="1.00"))
    assert part.watermark.value == T0 + 296  # pmo is idle: oms-eu alone, less the delay
    assert set(part.watermark.sources) == {"oms-eu"}


def test_the_watermark_never_falls_and_a_source_first_seen_behind_it_is_late(
    make_partition, make_envelope
):
    part = make_partition()
    part.apply(make_envelope(source="oms-eu", at=T0 + 120, amount="1.00"))
    assert part.watermark.value == T0 + 115

    # A new source 100 s behind: active (within 300 s) but the watermark does not fall back,
    # since the windows it passed may already be final.
    part.apply(make_envelope(source="wms", at=T0 + 100, amount="1.00"))
    assert part.watermark.value == T0 + 115
    with pytest.raises(InvalidEvent) as error:  # [T0, T0 + 60) took events until T0 + 90
        part.apply(make_envelope(source="wms", at=T0 + 20, amount="1.00"))
    assert error.value.reason == "late"

    # wms now holds the watermark until it passes oms-eu's T0 + 120.
    part.apply(make_envelope(source="oms-eu", at=T0 + 200, amount="1.00"))
    assert part.watermark.value == T0 + 115
    part.apply(make_envelope(source="wms", at=T0 + 150, amount="1.00"))
    assert part.watermark.value == T0 + 145


def test_a_future_stamp_moves_its_source_only_up_to_now(make_partition, make_envelope):
    part = make_partition()
    part.apply(make_envelope(source="a", at=T0 + 500, amount="1.00"), now=T0)
    part.apply(make_envelope(source="b", at=T0 - 10, amount="1.00"), now=T0)

    assert part.watermark.sources == {"a": T0, "b": T0 - 10}
    assert part.watermark.value == T0 - 5  # first a alone at T0; b behind it cannot lower it


def test_a_flood_of_source_names_keeps_at_most_max_sources_and_only_moves_forward():
    mark = Watermark(5.0, 30.0)
    values = []
    for i in range(MAX_SOURCES + 100):
        mark.observe(T0 + i, f"made-up-{i}")
        values.append(mark.value)

    assert len(mark.sources) == MAX_SOURCES
    assert min(mark.sources.values()) == T0 + 100  # the 100 most behind were forgotten
    assert values == sorted(values)
    assert mark.value == T0 + 100 - 5


def test_restore_gives_the_same_watermark_and_it_moves_on_as_the_original(
    make_partition, make_envelope
):
    # Three sources; each checkpoint record is restored into a fresh partition, which then
    # gets the same events as the original: their watermarks agree after every event.
    times = {"pmo": T0, "wms": T0 + 60, "oms-eu": T0 + 240}  # each first seen before the next
    stream = [
        make_envelope(source=source, at=start + step * 7, amount="1.00")
        for step in range(60)
        for source, start in times.items()
        if source != "pmo" or step == 0  # pmo: one event, then idle after 300 s
    ]
    original = make_partition()
    records = []
    for offset, event in enumerate(stream):
        original.apply(event)
        if offset % 25 == 24:
            records.append(over_the_wire(original.checkpoint(next_offset=offset + 1)))
            restored = make_partition()
            for record in records:
                restored.restore(record)
            assert restored.watermark.value == original.watermark.value
            assert restored.watermark.sources == original.watermark.sources
            assert restored.watermark.max_event_time == original.watermark.max_event_time
            for later in stream[offset + 1 : offset + 30]:
                for part in (original, restored):
                    part.apply(later)
                assert restored.watermark.value == original.watermark.value
            # Back to the stream's order: undo by rebuilding the original up to `offset`.
            original = make_partition()
            for record in records:
                original.restore(record)
    assert "pmo" not in original.watermark.sources  # idle: forgotten


def test_a_record_written_before_sources_were_kept_restores_the_old_watermark(
    make_partition, make_envelope
):
    old = make_partition()
    old.apply(make_envelope(source="oms-eu", at=T0 + 90, amount="1.00"))
    record = over_the_wire(old.checkpoint(next_offset=1))
    del record["sources"], record["watermark"]  # as checkpoint version 3 wrote it before

    fresh = make_partition()
    fresh.restore(record)

    assert fresh.watermark.value == T0 + 85  # newest event less the delay, as before
    fresh.apply(make_envelope(source="wms", at=T0 + 100, amount="1.00"))
    assert fresh.watermark.value == T0 + 95


def test_an_empty_checkpoint_has_no_watermark(make_partition):
    record = make_partition().checkpoint(next_offset=0)

    assert record["watermark"] is None
    assert record["sources"] == {}
    assert make_partition().watermark.value == NO_WATERMARK


def test_pulse_backtest_counts_the_publisher_behind_as_the_worker_does(make_event):
    lines = [make_event(event_id="slow-0", source="erp-slow", at=T0 - 180, amount="1.00")]
    lines.append(make_event(event_id="now", source="oms-eu", at=T0, amount="10.00"))
    lines += [
        make_event(event_id=f"slow-{i}", source="erp-slow", at=T0 - 180 + i * 0.18, amount="1.00")
        for i in range(1, 1000)
    ]
    out, err = io.StringIO(), io.StringIO()

    summary = run_backtest(lines, Settings(), out, err)

    assert (summary.counted, dict(summary.rejected)) == (1001, {})
    rows = [row for row in csv.DictReader(io.StringIO(out.getvalue())) if row["window"] == "1h"]
    assert sum(Decimal(r["value"]) for r in rows if r["kpi"] == "revenue") == Decimal("1010.00")
