"""Cardinality floods through the worker's batch step and its real /metrics collector.

100,000 valid events, each with a new business unit and region, or spread over 317 x 316 units
and regions (every dimension under its 1,000-value limit; measured before the series budget:
3.38M series, a 354 MB /metrics, 26-63 s scrapes, 3.1 GB RSS). With the default settings the
exposition must stay within `PULSE_MAX_SERIES` (50,000 series, about 6 MB), render in well under
Prometheus' 10 s scrape timeout, and the worker's memory must not grow with the flood; nothing is
lost (totals over all labels are exact) and each folded event is counted once.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.core.cardinality import OTHER
from streams.settings import load_settings
from streams.worker import Worker

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z
EVENTS = 100_000
SPAN = 1800.0
"""The flood covers 30 minutes of event time: 1m and 5m windows close and are scored."""
BATCH = 5000
KINDS = (
    "order_placed",
    "feedback_submitted",
    "inventory_issued",
    "expense_posted",
    "shipment_delivered",
    "invoice_issued",
)
DETECTOR_FAMILIES = (
    "pulse_kpi_anomaly_score",
    "pulse_kpi_observed",
    "pulse_kpi_expected",
    "pulse_kpi_expected_lower",
    "pulse_kpi_expected_upper",
    "pulse_kpi_anomaly_active",
)
MAX_METRICS_BYTES = 6 * 1024 * 1024
"""What 50,000 series take at ~120 bytes a line."""
MAX_SCRAPE_SECONDS = 2.0
"""A fifth of Prometheus' default scrape timeout (10 s); measured ~0.1 s."""
MAX_RSS_GROWTH_MB = 150
"""Measured ~20 MB over the flood; before the budget it was gigabytes."""


def dims(flood: str, i: int) -> dict[str, str]:
    if flood == "distinct":
        return {"business_unit": f"bu-{i}", "region": f"region-{i}"}
    return {"business_unit": f"bu-{i % 317}", "region": f"region-{(i // 317) % 316}"}


def message(flood: str, i: int) -> bytes:
    kind = KINDS[i % len(KINDS)]
    at = datetime.fromtimestamp(T0 + SPAN * i / EVENTS, UTC).isoformat()
    event: dict[str, object] = {
        "type": kind,
        "event_id": f"e-{i}",
        "occurred_at": at,
        "source": "flood",
        "schema_version": 1,
        "dimensions": dims(flood, i),
    }
    money = {"currency": "EUR"}
    if kind == "order_placed":
        event |= money | {"amount": "10.00", "order_id": f"o-{i}"}
    elif kind == "feedback_submitted":
        event |= {"csat_score": 4}
    elif kind == "inventory_issued":
        event |= money | {"amount": "4.00", "sku": "sku-1", "quantity": "2"}
    elif kind == "expense_posted":
        event |= money | {"amount": "7.00", "category": f"cat-{i % 50}"}
        event["dimensions"] = dims(flood, i) | {"cost_center": f"cc-{i % 200}"}
    elif kind == "shipment_delivered":  # the order placed four events before
        promised = "2024-03-02T12:00:00+00:00"
        event |= {"order_id": f"o-{i - 4}", "shipment_id": f"s-{i}"}
        event |= {"promised_delivery_at": promised}
    else:
        due = "2024-03-30T12:00:00+00:00"
        event |= money | {"amount": "5.00", "invoice_id": f"i-{i}", "customer_id": "c-1"}
        event |= {"due_at": due}
    return orjson.dumps(event)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def batch_step(worker: Worker, records: list[bytes], first_offset: int, now: float) -> int:
    """One batch of one partition through the worker's own batch step (no sends); returns the
    size of the largest changelog record it wrote."""
    tp = TopicPartition("pulse.events", 0)
    consumed = [
        ConsumerRecord(tp.topic, 0, first_offset + k, 0, 0, None, raw, None, 0, len(raw), ())
        for k, raw in enumerate(records)
    ]
    out = worker.step.read({tp: consumed}, now)
    assert out.dead == []
    out.counts.add_to(worker.state)
    worker.step.close(out, now, worker.state.watermark())
    return max(len(c.payload) for c in out.logged)


def own_labels(flood: str, i: int) -> tuple[str, ...]:
    """The labels event `i` would have without any limit, in its measures' dimension order."""
    values = tuple(dims(flood, i).values())
    if KINDS[i % len(KINDS)] == "expense_posted":
        return (*values, f"cc-{i % 200}", f"cat-{i % 50}")
    return values


@pytest.mark.parametrize("flood", ["distinct", "pairs"])
def test_a_flood_keeps_metrics_and_memory_within_the_budget(monkeypatch, flood: str) -> None:
    for name in [n for n in os.environ if n.startswith("PULSE_")]:
        monkeypatch.delenv(name)
    settings = load_settings()
    messages = [message(flood, i) for i in range(EVENTS)]
    worker = Worker(settings, "unused:9092")  # never started: no broker needed
    part = worker.state.assign(("pulse.events", 0))
    now = T0 + SPAN + 120  # the last minute is closed by the watermark
    before = rss_mb()

    biggest = max(
        batch_step(worker, messages[b : b + BATCH], b, now) for b in range(0, EVENTS, BATCH)
    )

    started = time.perf_counter()
    text = generate_latest(worker.registry)
    scrape = time.perf_counter() - started
    grown = rss_mb() - before
    samples: dict[str, int] = {}
    folded: dict[str, float] = {}
    single: dict[str, float] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            samples[sample.name] = samples.get(sample.name, 0) + 1
            single[sample.name] = sample.value
            if sample.name == "pulse_dimension_values_folded_total":
                dimension = sample.labels["dimension"]
                folded[dimension] = folded.get(dimension, 0) + sample.value
    assert sum(samples.values()) <= settings.max_series
    assert len(text) <= MAX_METRICS_BYTES
    assert scrape <= MAX_SCRAPE_SECONDS
    assert grown <= MAX_RSS_GROWTH_MB
    assert biggest < 1024 * 1024  # a changelog record a default broker accepts
    for family in DETECTOR_FAMILIES:
        assert samples.get(family, 0) <= settings.max_watched_series
    assert single["pulse_detector_series"] == settings.max_watched_series  # full...
    assert single["pulse_detector_series_refused_total"] > 0  # ...and refusing the rest
    guard = worker.state.config.guard
    assert guard is not None
    assert guard.series <= settings.kpi_series_budget

    # Nothing lost: every order is counted once, whatever its labels became.
    day = part.store.buckets[("1d", T0 - 12 * 3600)]
    orders = sum(v for (measure, _), v in day.items() if measure == "orders")
    assert orders == len(range(0, EVENTS, len(KINDS)))  # 16,667
    # Each event whose labels were folded is counted once per dimension, not per measure: the
    # events whose own labels are not in the store, computed from the stored labels.
    stored = {labels for (_, labels) in day if OTHER not in labels}
    moved = sum(own_labels(flood, i) not in stored for i in range(EVENTS))
    assert folded["business_unit"] == folded["region"] == moved
    assert moved > EVENTS * 0.9  # the flood was folded, not admitted
