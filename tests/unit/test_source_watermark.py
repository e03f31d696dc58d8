"""The watermark follows the newest event time less the largest arrival lag of the active sources
of a partition, with event-time idleness.

Settings of `make_partition`: 5 s watermark delay, 30 s allowed lateness, and a source idle once it
is more than 300 s (the default) behind the newest source of its partition.
"""

from __future__ import annotations

import csv
import io
import random
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


def test_a_rare_but_timely_source_holds_nothing_back_while_quiet_and_is_idle_after_300_s(
    make_partition, make_envelope
):
    part = make_partition()
    part.apply(make_envelope(source="oms-eu", at=T0, amount="1.00"))
    part.apply(make_envelope(source="pmo", at=T0, amount="1.00"))  # one event, then silence
    part.apply(make_envelope(source="oms-eu", at=T0 + 1, amount="1.00"))
    # pmo's lag: how far its event was behind the newest (T0 + 1) when another source's next
    # event came; oms-eu's stays open (None) until another source's event comes.
    assert part.watermark.lag_state() == {"oms-eu": None, "pmo": 1.0}
    assert part.watermark.value == T0 - 5

    part.apply(make_envelope(source="oms-eu", at=T0 + 200, amount="1.00"))
    assert part.watermark.value == T0 + 200 - 1 - 5  # quiet pmo holds only its 1 s

    part.apply(make_envelope(source="oms-eu", at=T0 + 300, amount="1.00"))
    assert part.watermark.value == T0 + 300 - 1 - 5
    assert set(part.watermark.sources) == {"oms-eu", "pmo"}  # exactly 300 s behind: active

    part.apply(make_envelope(source="oms-eu", at=T0 + 301, amount="1.00"))
    assert part.watermark.value == T0 + 296  # pmo is idle (forgotten): nothing lags
    assert set(part.watermark.sources) == {"oms-eu"}

    # pmo back, its event 52 s behind the newest when oms-eu's next one arrives: from then on
    # it holds windows 52 s behind the newest, and the watermark does not fall meanwhile.
    part.apply(make_envelope(source="pmo", at=T0 + 250, amount="1.00"))
    part.apply(make_envelope(source="oms-eu", at=T0 + 302, amount="1.00"))
    assert part.watermark.lag_state() == {"oms-eu": None, "pmo": 52.0}
    assert part.watermark.value == T0 + 296  # T0 + 302 - 52 - 5 would be lower
    part.apply(make_envelope(source="oms-eu", at=T0 + 400, amount="1.00"))
    assert part.watermark.value == T0 + 400 - 52 - 5


def test_a_publisher_behind_holds_windows_at_its_arrival_lag_while_it_is_quiet(
    make_partition, make_envelope
):
    part = make_partition()
    part.apply(make_envelope(source="oms-eu", at=T0, amount="1.00"))
    assert part.watermark.value == T0 - 5
    part.apply(make_envelope(source="erp", at=T0 - 30, amount="1.00"))
    part.apply(make_envelope(source="oms-eu", at=T0 + 1, amount="1.00"))
    assert part.watermark.lag_state() == {"oms-eu": None, "erp": 31.0}  # behind T0 + 1
    assert part.watermark.value == T0 - 5  # T0 + 1 - 31 - 5 would be lower: it never falls

    part.apply(make_envelope(source="oms-eu", at=T0 + 60, amount="1.00"))
    assert part.watermark.value == T0 + 60 - 31 - 5  # erp, quiet, is assumed 31 s behind
    part.apply(make_envelope(source="erp", at=T0 + 40, amount="1.00"))
    part.apply(make_envelope(source="oms-eu", at=T0 + 61, amount="1.00"))
    assert part.watermark.lag_state() == {"oms-eu": None, "erp": 21.0}
    assert part.watermark.value == T0 + 61 - 21 - 5
    part.apply(make_envelope(source="oms-eu", at=T0 + 100, amount="1.00"))
    assert part.watermark.value == T0 + 100 - 21 - 5
    # Its next event, 25 s behind the newest: the window [T0 + 60, T0 + 120) takes events
    # while the watermark is below T0 + 150.
    part.apply(make_envelope(source="erp", at=T0 + 75, amount="1.00"))
    assert total_revenue(part) == Decimal("8.00")  # all eight events, 1.00 each


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

    # wms's lag, settled by oms-eu's next event: 100 s (T0 + 200 - its T0 + 100).
    part.apply(make_envelope(source="oms-eu", at=T0 + 200, amount="1.00"))
    assert part.watermark.lag_state() == {"oms-eu": None, "wms": 100.0}
    assert part.watermark.value == T0 + 115  # T0 + 200 - 100 - 5 would be lower
    part.apply(make_envelope(source="wms", at=T0 + 150, amount="1.00"))  # 50 s behind
    assert part.watermark.value == T0 + 200 - 50 - 5


def test_a_future_stamp_moves_its_source_only_up_to_now(make_partition, make_envelope):
    part = make_partition()
    part.apply(make_envelope(source="a", at=T0 + 500, amount="1.00"), now=T0)
    part.apply(make_envelope(source="b", at=T0 - 10, amount="1.00"), now=T0)

    assert part.watermark.sources == {"a": T0, "b": T0 - 10}
    assert part.watermark.lag_state() == {"a": 0.0, "b": None}  # b's 10 s, still open
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
    # Each lags by 1 s (behind the next name's event), the newest still open (0): the
    # newest event less 1 s less the delay.
    assert mark.value == T0 + MAX_SOURCES + 99 - 1 - 5


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
            assert restored.watermark.lag_state() == original.watermark.lag_state()
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


def test_a_record_written_before_lags_were_kept_holds_windows_as_the_old_rule_did(
    make_partition, make_envelope
):
    live = make_partition()
    for source, at in (("oms-eu", T0), ("pmo", T0), ("oms-eu", T0 + 1), ("oms-eu", T0 + 60)):
        live.apply(make_envelope(source=source, at=at, amount="1.00"))
    record = over_the_wire(live.checkpoint(next_offset=4))
    assert record["lags"] == {"oms-eu": None, "pmo": 1.0}
    del record["lags"]  # as the version without lags wrote it

    old = make_partition()
    old.restore(record)
    assert old.watermark.value == live.watermark.value == T0 + 60 - 1 - 5
    # pmo now lags by how far it was behind the newest (60 s): held at T0, as the old rule did.
    assert old.watermark.lag_state() == {"oms-eu": 0.0, "pmo": 60.0}
    for part in (live, old):
        part.apply(make_envelope(source="oms-eu", at=T0 + 100, amount="1.00"))
    assert (live.watermark.value, old.watermark.value) == (T0 + 94, T0 + 54)
    for part in (live, old):  # pmo's next event settles oms-eu's lag at 1 s, its own is 0
        part.apply(make_envelope(source="pmo", at=T0 + 101, amount="1.00"))
    assert live.watermark.value == old.watermark.value == T0 + 101 - 1 - 5


def test_a_lone_source_waiting_for_its_lag_is_measured_alike_after_a_restore(
    make_partition, make_envelope
):
    live = make_partition()
    live.apply(make_envelope(source="erp-slow", at=T0 - 180, amount="1.00"))
    record = over_the_wire(live.checkpoint(next_offset=1))
    assert record["lags"] == {"erp-slow": None}  # alone: nothing to measure it against yet

    recovered = make_partition()
    recovered.restore(record)
    for part in (live, recovered):
        part.apply(make_envelope(source="oms-eu", at=T0, amount="1.00"))
        assert part.watermark.lag_state() == {"erp-slow": 180.0, "oms-eu": None}
        assert part.watermark.value == T0 - 185
        part.apply(make_envelope(source="erp-slow", at=T0 - 170, amount="1.00"))
        assert part.watermark.value == T0 - 175


def test_an_empty_checkpoint_has_no_watermark(make_partition):
    record = make_partition().checkpoint(next_offset=0)

    assert record["watermark"] is None
    assert record["sources"] == {}
    assert record["lags"] == {}
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


def by_the_rule(events: list[tuple[float, str]], idle: float = 300.0) -> list[float]:
    """The watermark after each event, by the documented rule, recomputed from scratch (no
    incremental state): `Watermark` must agree on every prefix."""
    marks, mark = [], NO_WATERMARK
    for n in range(1, len(events) + 1):
        newest: dict[str, float] = {}
        lag: dict[str, float] = {}
        top, last = NO_WATERMARK, ""
        for at, source in events[:n]:
            if at <= newest.get(source, NO_WATERMARK) or at < top - idle:
                continue  # older than its source's newest, or idle on arrival: moves nothing
            before, top = top, max(top, at)
            if last and last != source:
                lag[last] = top - newest[last]  # settled by another source's event
            lag[source], newest[source], last = max(0.0, before - at), at, source
        active = [s for s, t in newest.items() if t >= top - idle]
        mark = max(mark, top - max(lag[s] for s in active) - 5.0)
        marks.append(mark)
    return marks


@pytest.mark.parametrize("seed", range(20))
def test_the_watermark_agrees_with_the_rule_recomputed_on_random_streams(seed):
    rng = random.Random(seed)
    sources = ["oms", "wms", "erp", "treasury", "survey"][: rng.randint(1, 5)]
    events, clock = [], T0
    for _ in range(150):
        clock += rng.choice([0.0, 0.5, 3.0, 40.0, 200.0])
        source = rng.choice(sources)
        behind = rng.choice([0.0, 0.0, 2.0, 30.0, 170.0, 400.0])  # some beyond the idle time
        events.append((clock - behind, source))
    mark = Watermark(5.0, 30.0, idle=300.0)
    seen = []
    for at, source in events:
        mark.observe(at, source)
        seen.append(mark.value)
    assert seen == by_the_rule(events)


@pytest.mark.parametrize("seed", range(5))
def test_a_restored_watermark_goes_on_as_the_original_on_random_streams(seed):
    rng = random.Random(seed)
    events, clock = [], T0
    for _ in range(80):
        clock += rng.choice([0.0, 0.5, 3.0, 40.0, 200.0])
        events.append((clock - rng.choice([0.0, 2.0, 30.0, 170.0]), rng.choice("abcd")))
    for cut in range(0, len(events), 7):
        original = Watermark(5.0, 30.0)
        for at, source in events[:cut]:
            original.observe(at, source)
        saved = (
            over_the_wire(
                {
                    "max": original.max_event_time,
                    "sources": original.sources,
                    "lags": original.lag_state(),
                    "value": original.value,
                }
            )
            if cut
            else None
        )
        restored = Watermark(5.0, 30.0)
        if saved is not None:
            restored.restore(saved["max"], saved["sources"], saved["value"], saved["lags"])
        for at, source in events[cut:]:
            original.observe(at, source)
            restored.observe(at, source)
            assert restored.value == original.value
            assert restored.lag_state() == original.lag_state()
