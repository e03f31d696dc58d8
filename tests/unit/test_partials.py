"""Per-partition partials merged into company-wide values: the numbers of one process owning
every partition, whatever the number of workers (the merge stage's math, without Faust)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from property_helpers import (
    CATALOG,
    LATENESS,
    WINDOWS,
    Stream,
    Values,
    differences,
    event_streams,
    feed,
    new_worker,
    partition_of,
)
from test_properties import PROPERTY

from streams.core import Finalizer, KpiValue, WorkerState
from streams.core.partials import (
    DAY_END,
    Partial,
    Progress,
    WindowInstance,
    decode_record,
    encode_partial,
    encode_progress,
    merged_values,
    partial_of,
    verdict,
)
from streams.core.sketch import QuantileSketch
from streams.errors import ChangelogError
from streams.kafka.kpi_topic import KpiPublisher

TOPIC = "events"


def as_values(values: Sequence[KpiValue]) -> Values:
    out: Values = {}
    for v in values:
        key = (v.kpi, v.window, v.start, v.end, v.labels)
        assert key not in out, f"{key} emitted twice"
        out[key] = v.value
    return out


def finalize(worker: WorkerState, mark: float) -> tuple[Finalizer, list[KpiValue]]:
    """What a worker's final pass publishes at watermark `mark`."""
    parts = [p for p in worker.partitions.values() if p.has_data]
    finalizer = Finalizer(CATALOG, WINDOWS, LATENESS)
    first = min(p.first_event_time for p in parts)
    last = max(p.watermark.max_event_time for p in parts)
    return finalizer, finalizer.final_values([p.store for p in parts], mark, first, last)


@PROPERTY
@given(
    stream=event_streams(),
    partitions=st.sampled_from([2, 3, 4]),
    workers=st.sampled_from([1, 2, 3]),
    salt=st.integers(0, 999),
)
def test_merged_partials_equal_one_process_over_every_partition(
    stream: Stream, partitions: int, workers: int, salt: int
) -> None:
    split: list[list[bytes]] = [[] for _ in range(partitions)]
    for sent in stream.events:
        split[partition_of(sent.key, partitions, salt)].append(sent.raw)
    fleet = [new_worker() for _ in range(workers)]
    whole = new_worker()
    for number, raws in enumerate(split):
        feed(fleet[number % workers].assign((TOPIC, number)), raws)
        feed(whole.assign((TOPIC, number)), raws)
    assume(all(any(p.has_data for p in w.partitions.values()) for w in fleet))
    # The merge stage emits a window once the slowest worker's progress is past it.
    mark = min(w.watermark() for w in fleet)

    by_window: dict[str, list[Partial]] = {}
    for worker in fleet:
        finalizer, _ = finalize(worker, mark)
        for instance in finalizer.due:
            for source, part in worker.partitions.items():
                partial = partial_of(part.store, instance, source, final=True)
                if not partial.empty:  # what the worker sends, read back as the merge does
                    decoded = decode_record(encode_partial(partial))
                    assert isinstance(decoded, Partial)
                    by_window.setdefault(instance.key, []).append(decoded)
    merged = as_values([v for ps in by_window.values() for v in merged_values(CATALOG, ps)])

    want = as_values(finalize(whole, mark)[1])
    assert differences(merged, want) == []


def test_a_partial_round_trips_every_kind_of_accumulator() -> None:
    sketch = QuantileSketch()
    for value in (0.0, 3.5, 120.0):
        sketch.add(value)
    instance = WindowInstance(DAY_END, 1_709_251_200, 1_709_337_600, 1_706_745_600)
    partial = Partial(
        instance,
        ("pulse.events", 3),
        True,
        {("revenue", ("retail", "eu")): Decimal("10.25"), ("orders", ("retail", "eu")): 2},
        {("cycle", ("retail",)): sketch},
    )
    back = decode_record(encode_partial(partial))
    assert isinstance(back, Partial)
    assert (back.instance, back.source, back.final, back.accs) == (
        partial.instance,
        partial.source,
        partial.final,
        partial.accs,
    )
    assert back.trailing[("cycle", ("retail",))].to_json() == sketch.to_json()  # type: ignore[union-attr]
    assert partial.key == b"day-end|1709251200|pulse.events|3"
    progress = Progress(("pulse.events", 3), 1_709_251_265.5)
    assert decode_record(encode_progress(progress)) == progress


@pytest.mark.parametrize(
    "data", [b"not json", b'{"v": 99, "kind": "progress"}', b'{"v": 1, "kind": "partial"}']
)
def test_an_unreadable_partials_record_is_fatal(data: bytes) -> None:
    with pytest.raises(ChangelogError, match="partials record"):
        decode_record(data)


def test_a_window_waits_for_the_slowest_source_then_is_provisional_then_final() -> None:
    expected = ["t[0]", "t[1]"]

    def judge(marks: dict[str, float], *, sent: bool = False) -> str | None:
        return verdict(120, marks, expected, 30.0, provisional_sent=sent)

    assert judge({"t[0]": 500.0}) is None  # t[1] has said nothing yet
    assert judge({"t[0]": 500.0, "t[1]": 119.0}) is None
    assert judge({"t[0]": 500.0, "t[1]": 120.0}) == "provisional"
    assert judge({"t[0]": 500.0, "t[1]": 120.0}, sent=True) is None
    assert judge({"t[0]": 500.0, "t[1]": 150.0}, sent=True) == "final"
    assert judge({"t[0]": 150.0, "t[1]": 150.0}) == "final"  # caught up in one step


def test_the_publisher_sends_parts_then_progress_and_progress_when_a_minute_passes(
    make_state: object, make_envelope: object
) -> None:
    state: WorkerState = make_state()  # type: ignore[operator]
    publisher = KpiPublisher(state, own_values=False, partials=True)
    a, b = state.assign((TOPIC, 0)), state.assign((TOPIC, 1))
    t0 = 1_709_294_400  # 12:00:00Z
    a.apply(make_envelope(at=t0 + 10, amount="100.00"))  # type: ignore[operator]
    b.apply(make_envelope(at=t0 + 20, amount="40.00"))  # type: ignore[operator]
    a.apply(make_envelope(at=t0 + 70, amount="1.00"))  # type: ignore[operator]
    b.apply(make_envelope(at=t0 + 66, amount="1.00"))  # type: ignore[operator]

    closing, final = publisher.due()  # watermark 12:01:01: the 12:00 minute closes
    assert publisher.records(closing, final) == []  # the merge stage publishes values
    records = publisher.partial_records()
    assert [key for key, _ in records] == [
        f"1m|{t0}|{TOPIC}|0".encode(),
        f"1m|{t0}|{TOPIC}|1".encode(),
        f"progress|{TOPIC}|0".encode(),
        f"progress|{TOPIC}|1".encode(),
    ]
    first = decode_record(records[0][1])
    assert isinstance(first, Partial)
    assert (first.final, first.accs[("revenue", ("retail", "eu"))]) == (False, Decimal("100.00"))
    assert decode_record(records[2][1]) == Progress((TOPIC, 0), t0 + 61.0)
    publisher.due()  # nothing new due, the watermark in the same minute: nothing to say
    assert publisher.partial_records() == []

    b.apply(make_envelope(at=t0 + 126, amount="1.00"))  # type: ignore[operator]
    a.apply(make_envelope(at=t0 + 126, amount="1.00"))  # type: ignore[operator]
    publisher.due()  # 12:02:01: 12:01 closes, 12:00 is final (past 30 s of lateness)
    assert [key for key, _ in publisher.partial_records()] == [
        f"1m|{t0 + 60}|{TOPIC}|0".encode(),
        f"1m|{t0 + 60}|{TOPIC}|1".encode(),
        f"1m|{t0}|{TOPIC}|0".encode(),
        f"1m|{t0}|{TOPIC}|1".encode(),
        f"progress|{TOPIC}|0".encode(),
        f"progress|{TOPIC}|1".encode(),
    ]


def test_a_partition_without_events_gets_the_progress_of_its_worker(
    make_state: object, make_envelope: object
) -> None:
    """An owned partition that never received an event has nothing in any window; its
    worker's watermark stands for it, so it does not hold the company-wide windows back."""
    state: WorkerState = make_state()  # type: ignore[operator]
    publisher = KpiPublisher(state, own_values=False, partials=True)
    busy = state.assign((TOPIC, 0))
    state.assign((TOPIC, 1))  # read to its end, never an event
    t0 = 1_709_294_400
    busy.apply(make_envelope(at=t0 + 10, amount="100.00"))  # type: ignore[operator]
    busy.apply(make_envelope(at=t0 + 70, amount="1.00"))  # type: ignore[operator]
    publisher.due()
    records = [decode_record(value) for _, value in publisher.partial_records()]
    assert [r.source for r in records if isinstance(r, Partial)] == [(TOPIC, 0)]
    assert [r for r in records if isinstance(r, Progress)] == [
        Progress((TOPIC, 0), t0 + 65.0),
        Progress((TOPIC, 1), t0 + 65.0),
    ]
