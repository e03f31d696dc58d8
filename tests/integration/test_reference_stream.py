"""The reference ledger end to end: through the broker into a worker, out on the KPI topic and
on /metrics, compared with the values tests/reference/expected.py computes independently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import TopicPartition
from expected import RATIO_TOLERANCE, agrees, expected_rows
from kafka_helpers import eventually, produce, scrape
from ledger import SETTINGS_ENV, ledger_lines

from streams.kafka.clients import new_consumer, topic_partitions
from streams.settings import Settings
from streams.worker.worker import Worker

# A counted event feeding no KPI, two days after the ledger: it moves the watermark so that
# every window of the ledger becomes final (end + 60 s lateness <= watermark = PUSH - 5 s).
PUSH = datetime(2026, 11, 4, 12, 0, tzinfo=UTC).timestamp()
PUSHER = orjson.dumps(
    {
        "event_id": "pusher",
        "type": "shipment_dispatched",
        "occurred_at": "2026-11-04T12:00:00+00:00",
        "source": "it",
        "schema_version": 1,
        "dimensions": {"business_unit": "retail", "region": "de"},
        "order_id": "none",
        "shipment_id": "none",
    }
)
FINAL_BEFORE = PUSH - 5 - 60
Key = tuple[str, str, str, str, str]


def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def settings_of_reference(make_settings: Callable[..., Settings]) -> Settings:
    overrides: dict[str, Any] = {
        k.removeprefix("PULSE_").lower(): v for k, v in SETTINGS_ENV.items()
    }
    overrides["max_event_bytes"] = 65536
    return make_settings(**overrides)


async def final_kpi_records(bootstrap: str, topic: str) -> dict[Key, Decimal]:
    """The latest `final` record of each key on every partition of the KPI topic."""
    consumer = new_consumer(bootstrap, group_id=None)
    await consumer.start()
    try:
        # Ask the broker: a fresh consumer's metadata lists every topic on Tansu, not on Kafka.
        count = await topic_partitions(bootstrap, topic)
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: dict[Key, Decimal] = {}
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2.0:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                idle_since = time.monotonic()
                for record in records:
                    body = orjson.loads(record.value)
                    if not body["final"]:
                        continue
                    dims = ";".join(f"{k}={v}" for k, v in sorted(body["dimensions"].items()))
                    key = (
                        body["kpi"],
                        body["window"],
                        rfc3339(body["window_start"]),
                        rfc3339(body["window_end"]),
                        dims,
                    )
                    if body["value"] is None:  # a ratio's parts only: no denominator
                        found.pop(key, None)
                        continue
                    found[key] = Decimal(body["value"])
        return found
    finally:
        await consumer.stop()


async def test_reference_ledger_through_the_broker(
    kafka_bootstrap: str,
    make_settings: Callable[..., Settings],
    input_topic: Callable[[int], Awaitable[str]],
    start_worker: Callable[[Settings], Awaitable[Worker]],
) -> None:
    lines = [*ledger_lines(), PUSHER]
    expected = expected_rows(lines)
    topic = await input_topic(1)
    settings = settings_of_reference(make_settings)
    worker = await start_worker(settings)
    await produce(kafka_bootstrap, topic, lines)

    async def all_read() -> bool:
        state = worker.state
        return sum(state.processed.values()) + sum(state.rejected.values()) == len(lines)

    await eventually(all_read, within=60, what="every ledger line processed")
    await asyncio.sleep(0.5)  # the batch's KPI records are sent right after its changelog

    # 1. Every final window on the KPI topic, compared with every expected final row.
    want = {
        key: value
        for key, value in expected.items()
        if datetime.fromisoformat(key[3]).timestamp() <= FINAL_BEFORE
    }
    got = await final_kpi_records(kafka_bootstrap, settings.kpi_topic)
    missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing, f"{len(missing)} missing, e.g. {missing[:5]}"
    assert not unexpected, f"{len(unexpected)} unexpected, e.g. {unexpected[:5]}"
    wrong = [(k, got[k], want[k]) for k in want if not agrees(k[0], got[k], want[k])]
    assert not wrong, f"{len(wrong)} values differ, e.g. {wrong[:5]}"
    assert len(want) > 1000  # the comparison covered the ledger, not an empty corner of it

    # 2. /metrics: running KPIs as of the watermark, trailing ones for the last closed day,
    # budget variance for the last closed month, against the expected rows of those instances.
    samples = await scrape(worker.server.url)
    push_day_end = "2026-11-04T23:00:00Z"  # Europe/Berlin (CET) midnight
    last_closed_day_end = "2026-11-03T23:00:00Z"
    checks = {
        key: value
        for key, value in expected.items()
        if (key[1] in ("balance", "cumulative") and key[3] == push_day_end)
        or (key[1] == "30d" and key[3] == last_closed_day_end)
        or (key[1] == "1mo" and key[2] == "2026-09-30T22:00:00Z")  # October, Berlin time
    }
    assert {k[1] for k in checks} == {"balance", "cumulative", "30d", "1mo"}
    for (kpi, window, _, _, dims), value in checks.items():
        labels = dict(pair.split("=", 1) for pair in dims.split(";") if pair)
        # KPIs kept in days are exported in seconds (Prometheus' base unit)
        family, per_unit = (
            (f"pulse_{kpi.removesuffix('_days')}_seconds", 86400)
            if kpi.endswith("_days")
            else (f"pulse_{kpi}", 1)
        )
        shown = samples.get((family, frozenset({**labels, "window": window}.items())))
        assert shown is not None, f"/metrics lacks {kpi}{labels} window={window}"
        shown_value = Decimal(repr(shown)) / per_unit
        assert abs(shown_value - value) <= RATIO_TOLERANCE * max(1, abs(value)), (
            f"{kpi}{labels} window={window}: /metrics {shown}, expected {value}"
        )
