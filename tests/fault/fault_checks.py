"""Reading what the workers produced and comparing it with the truth: the KPI topic's final
records, and a worker's /metrics against the events of the partitions it owns."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import TopicPartition
from expected import Counted, Rows, business_day, day_bounds, flow_rows, rfc3339
from fault_truth import ADDITIVE_GAUGES, COMPARED_KPIS, PARTITIONS, Key, Truth
from prometheus_client.parser import text_string_to_metric_families

from streams.kafka.clients import new_consumer, topic_partitions

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# --- the KPI topic ----------------------------------------------------------------------------


@dataclass
class KpiRecord:
    value: Decimal | None
    """None: a ratio's parts only (a zero denominator on the writer's partitions)."""
    partitions: frozenset[str]


async def final_kpi_records(bootstrap: str, topic: str) -> dict[Key, list[KpiRecord]]:
    """Every `final` record of the KPI topic, per key, in the order written (a key always goes
    to one partition of the topic), as a `read_committed` consumer sees them: records of a
    killed worker's aborted transaction are not there to see."""
    consumer = new_consumer(
        bootstrap,
        group_id=None,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    found: dict[Key, list[KpiRecord]] = defaultdict(list)
    try:
        parts = [TopicPartition(topic, p) for p in range(await topic_partitions(bootstrap, topic))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)  # the last stable offsets, read_committed
        pending = set(parts)
        deadline = time.monotonic() + 120
        while pending:
            assert time.monotonic() < deadline, f"KPI topic not read within 120 s: {pending}"
            batches = await consumer.getmany(*pending, timeout_ms=200, max_records=50_000)
            for records in batches.values():
                for record in records:
                    if b'"final":true' not in record.value:
                        continue
                    body = orjson.loads(record.value)
                    value = None if body["value"] is None else Decimal(body["value"])
                    record_ = KpiRecord(value, frozenset(body["partitions"]))
                    found[_record_key(body)].append(record_)
            for tp in list(pending):  # offsets have gaps: transaction markers take one each
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return found


def _record_key(body: dict[str, Any]) -> Key:
    dims = ";".join(f"{k}={v}" for k, v in sorted(body["dimensions"].items()))
    start = datetime.fromtimestamp(body["window_start"], UTC)
    end = datetime.fromtimestamp(body["window_end"], UTC)
    return (body["kpi"], body["window"], rfc3339(start), rfc3339(end), dims)


def latest_complete(
    records: dict[Key, list[KpiRecord]], partitions: frozenset[str]
) -> tuple[dict[Key, Decimal], list[Key]]:
    """The newest final record of every compared key, and the keys whose newest record does not
    cover every input partition (a worker that owned only some of them wrote it last)."""
    latest: dict[Key, Decimal] = {}
    partial: list[Key] = []
    for key, history in records.items():
        if key[0] not in COMPARED_KPIS:
            continue
        newest = history[-1]
        if newest.partitions != partitions:
            partial.append(key)
        if newest.value is not None:
            latest[key] = newest.value
    return latest, partial


async def assert_final_kpis(
    bootstrap: str, names: dict[str, str], want: Truth, partitions: int = PARTITIONS
) -> int:
    """The newest final record of every key on the KPI topic equals the truth, exactly, and was
    written by a worker that owned every input partition; returns how many rows matched."""
    every = frozenset(f"{names['input']}[{p}]" for p in range(partitions))
    deadline = time.monotonic() + 60
    while True:  # the last batches' records commit shortly after the worker caught up
        records = await final_kpi_records(bootstrap, f"{names['prefix']}.kpi")
        got, partial = latest_complete(records, every)
        if set(want.rows) <= set(got) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert not partial, f"{len(partial)} keys last written by a partial owner: {partial[:3]}"
    assert_rows_equal(got, want.rows, "final KPI records")
    assert len(want.rows) > 10_000  # the comparison covered the stream, not a corner of it
    return len(want.rows)


def assert_rows_equal(got: dict[Key, Decimal], want: dict[Key, Decimal], what: str) -> None:
    """Exact equality of two row sets: same keys, equal Decimals (money to the cent, counts,
    ratios at the 10 places both sides round to)."""
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want))
    wrong = sorted((k, got[k], want[k]) for k in set(want) & set(got) if got[k] != want[k])
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected, e.g. {unexpected[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} wrong (key, got, want), e.g. {wrong[:3]}")
    assert not problems, f"{what}: " + "; ".join(problems)


# --- /metrics ---------------------------------------------------------------------------------


def parse_metrics(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def owned_partitions(samples: Samples) -> set[int]:
    """The input partitions a worker owns, from its `pulse_consumer_lag_messages` series."""
    return {
        int(dict(labels)["partition"])
        for name, labels in samples
        if name == "pulse_consumer_lag_messages"
    }


def window_ends(samples: Samples) -> dict[str, float]:
    return {
        dict(labels)["window"]: value
        for (name, labels), value in samples.items()
        if name == "pulse_window_end_timestamp_seconds"
    }


ShownKey = tuple[str, str, str, str]
"""(kpi, window, window_end, dimensions): /metrics shows one instance per window kind."""
FLOW_WINDOWS = ("1m", "5m", "1h", "1d")


def shown_instances(watermark: float) -> dict[str, str]:
    """The end (RFC 3339) of the instance /metrics must show per flow window at `watermark`
    (docs: the newest instance closed on every owned partition; for 1d the business day before
    the watermark's), computed here from the definitions."""
    at = datetime.fromtimestamp(watermark, UTC)
    ends = {
        name: rfc3339(datetime.fromtimestamp(watermark // size * size, UTC))
        for name, size in (("1m", 60), ("5m", 300), ("1h", 3600))
    }
    ends["1d"] = rfc3339(day_bounds(business_day(at))[0])
    return ends


def additive_rows(events: list[Counted]) -> dict[Key, Decimal]:
    """Flow rows of the additive KPIs (what /metrics sums per worker) of `events`."""
    rows = Rows()
    flow_rows(rows, events)
    return {k: v for k, v in rows.items() if k[0] in ADDITIVE_GAUGES}


def compare_shown(samples: Samples, rows: dict[Key, Decimal]) -> tuple[int, list[str]]:
    """A worker's additive KPI gauges against `rows` (the flow rows of the events on the
    partitions it owns): (series compared, problems). A gauge of a series with no row must be 0
    (a quiet series); any other difference is a stale or duplicated partial sum, or a loss."""
    problems: list[str] = []
    watermark = samples[("pulse_watermark_timestamp_seconds", frozenset())]
    ends = shown_instances(watermark)
    for window, end in window_ends(samples).items():
        shown = rfc3339(datetime.fromtimestamp(end, UTC))
        if window in ends and shown != ends[window]:
            problems.append(f"{window} shows the instance ending {shown}, not {ends[window]}")
    got: dict[ShownKey, float] = {}
    for (name, labels), value in samples.items():
        kpi = name.removeprefix("pulse_")
        label_map = dict(labels)
        window = label_map.pop("window", "")
        if kpi in ADDITIVE_GAUGES and window in FLOW_WINDOWS:
            dims = ";".join(f"{k}={v}" for k, v in sorted(label_map.items()))
            got[(kpi, window, ends[window], dims)] = value
    want = {
        (kpi, window, end, dims): value
        for (kpi, window, _, end, dims), value in rows.items()
        if ends[window] == end
    }
    for key in sorted(set(got) | set(want)):
        value = want.get(key)
        if (value is None and got[key] != 0.0) or (
            value is not None and got.get(key) != float(value)
        ):
            problems.append(f"{key}: /metrics {got.get(key)}, expected {value}")
    return len(want), problems
