"""The /metrics exposition, parsed back from text, on a fresh registry per test."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.core.windows import size_label as window_label
from streams.export.metrics import build_registry

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z, a whole minute
P0, P1 = ("pulse.events", 0), ("pulse.events", 1)
ALL_REASONS = (
    "undecodable",
    "oversized",
    "schema_violation",
    "unknown_type",
    "non_finite_number",
    "timestamp_out_of_range",
    "unknown_currency",
    "duplicate",
    "late",
    "internal_error",
    "unkeyed",
)

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(registry) -> Samples:
    """{sample name: {sorted label pairs: value}} from the text exposition format."""
    text = generate_latest(registry).decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def revenue_of(samples: Samples) -> dict[tuple[str, str, str], Decimal]:
    return {
        (labels["business_unit"], labels["region"], labels["window"]): Decimal(str(value))
        for labels, value in ((dict(k), v) for k, v in samples.get("pulse_revenue", {}).items())
    }


def feed(state, source, *events) -> None:
    """Apply events as the worker does: count each valid one by type."""
    part = state.assign(source)
    for event in events:
        part.apply(event)
        state.processed[event.type] += 1


@pytest.fixture
def state(make_state, make_envelope):
    """Two partitions, both past the end of [T0, T0 + 60) by their watermarks."""
    state = make_state()  # 60 s windows, delay 5, lateness 30; 1 USD = 0.9, 1 GBP = 1.25 EUR
    feed(
        state,
        P0,
        make_envelope(at=T0 + 5, amount="100.00"),
        make_envelope(
            at=T0 + 10, amount="20.00", currency="USD", business_unit="wholesale", region="us"
        ),
        make_envelope(at=T0 + 70, amount="1.00"),  # P0 watermark T0 + 65
    )
    feed(
        state,
        P1,
        make_envelope(at=T0 + 20, amount="10.00", currency="GBP"),
        make_envelope(at=T0 + 30, type="refund_issued", amount="0.10", currency="GBP"),
        make_envelope(at=T0 + 40, amount="3.00", business_unit="online", region="apac"),
        make_envelope(at=T0 + 68, amount="2.00"),  # P1 watermark T0 + 63
    )
    state.rejected["late"] += 2
    state.rejected["schema_violation"] += 1
    state.unkeyed["pulse.events"] += 3
    return state


def test_revenue_of_the_newest_closed_window_with_its_end(state):
    samples = scrape(build_registry(state))

    # Worker watermark min(T0 + 65, T0 + 63) = T0 + 63: newest closed window [T0, T0 + 60).
    assert revenue_of(samples) == {
        # 100.00 + 10.00 GBP * 1.25 - 0.10 GBP * 1.25 (0.125 -> 0.12) = 100 + 12.50 - 0.12
        ("retail", "eu", "1m"): Decimal("112.38"),
        ("wholesale", "us", "1m"): Decimal("18.00"),  # 20.00 USD * 0.9
        ("online", "apac", "1m"): Decimal("3.00"),
    }
    assert samples["pulse_window_end_timestamp_seconds"] == {(("window", "1m"),): T0 + 60}
    assert samples["pulse_watermark_timestamp_seconds"] == {(): T0 + 63}


def test_a_ratio_without_a_denominator_here_exports_its_parts_only(make_state, make_envelope):
    """COGS but no revenue in the window on this worker: no margin of its own, but the -40.00
    another worker's revenue must be set against (sum(numerator) / sum(denominator))."""
    state = make_state()
    feed(
        state,
        P0,
        make_envelope(at=T0 + 5, type="inventory_issued", amount="40.00"),
        make_envelope(at=T0 + 70, type="inventory_issued", amount="1.00"),  # closes [T0, T0+60)
    )
    samples = scrape(build_registry(state))

    series = (("business_unit", "retail"), ("region", "eu"), ("window", "1m"))
    assert samples["pulse_gross_margin_ratio_numerator"] == {series: -40.0}
    assert samples["pulse_gross_margin_ratio_denominator"] == {series: 0.0}
    assert "pulse_gross_margin_ratio" not in samples  # no value: not a 0, not a NaN


def test_counters_and_freshness(state):
    samples = scrape(build_registry(state))

    assert samples["pulse_events_processed_total"] == {
        (("type", "order_placed"),): 6,  # P0: 3 orders, P1: 3 orders
        (("type", "refund_issued"),): 1,
    }
    expected_rejected = dict.fromkeys(ALL_REASONS, 0.0) | {"late": 2, "schema_violation": 1}
    assert samples["pulse_events_rejected_total"] == {
        (("reason", reason),): count for reason, count in expected_rejected.items()
    }
    assert samples["pulse_last_event_timestamp_seconds"] == {(): T0 + 70}  # max(T0+70, T0+68)
    assert samples["pulse_dedupe_evictions_total"] == {(): 0}
    assert samples["pulse_unkeyed_events_total"] == {(("topic", "pulse.events"),): 3}
    assert "pulse_consumer_lag_messages" not in samples  # no lag source given


def test_consumer_lag_per_owned_partition(state):
    registry = build_registry(state, lag=lambda: [("pulse.events", 0, 7), ("pulse.events", 1, 0)])

    assert scrape(registry)["pulse_consumer_lag_messages"] == {
        (("partition", "0"), ("topic", "pulse.events")): 7,
        (("partition", "1"), ("topic", "pulse.events")): 0,
    }


def test_a_revoked_partitions_series_disappear(state):
    registry = build_registry(state)
    state.revoke(P1)

    samples = scrape(registry)  # read at scrape time: no re-registration needed

    # Watermark now P0's alone, T0 + 65: still [T0, T0 + 60), without P1's sums;
    # online/apac lived only on P1.
    assert revenue_of(samples) == {
        ("retail", "eu", "1m"): Decimal("100.00"),
        ("wholesale", "us", "1m"): Decimal("18.00"),
    }
    assert samples["pulse_last_event_timestamp_seconds"] == {(): T0 + 70}


def test_an_empty_state_exports_no_revenue_and_no_timestamps(make_state):
    samples = scrape(build_registry(make_state()))

    assert "pulse_revenue" not in samples
    assert "pulse_window_end_timestamp_seconds" not in samples
    assert "pulse_last_event_timestamp_seconds" not in samples
    assert "pulse_watermark_timestamp_seconds" not in samples
    assert "pulse_events_processed_total" not in samples
    assert samples["pulse_events_rejected_total"] == {
        (("reason", reason),): 0 for reason in ALL_REASONS
    }


def test_nothing_is_registered_on_the_global_registry(state):
    build_registry(state)

    assert b"pulse_" not in generate_latest(REGISTRY)


def test_window_sizes_from_hourly_windows_are_labelled_in_hours(make_state, make_envelope):
    state = make_state()
    feed(state, P0, make_envelope(at=T0 + 10, amount="5.00"))
    feed(state, P0, make_envelope(at=T0 + 3605 + 10, amount="1.00"))  # watermark T0 + 3610

    assert revenue_of(scrape(build_registry(state))) == {("retail", "eu", "1h"): Decimal("5.00")}


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(60, "1m"), (300, "5m"), (3600, "1h"), (86400, "1d"), (90, "90s"), (7200, "2h"), (1, "1s")],
)
def test_window_label(seconds, label):
    assert window_label(seconds) == label
