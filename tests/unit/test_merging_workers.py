"""Ratios stay exact when several workers each hold part of a series.

Prometheus recombines a ratio as sum(numerator) / sum(denominator) over the workers' exports.
A worker whose share of a series has a zero denominator (COGS but no revenue in a window; OpEx
of a cost center whose budget another worker holds; receivables without revenue in the last
30 days) must still export its numerator, or the merged ratio misses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from schemas.events import Envelope
from streams.core import Finalizer, KpiValue, WorkerState
from streams.core.catalog import CATALOG

SCALES = {k.name: k.scale for k in CATALOG.kpis}
FORMULAS = {k.name for k in CATALOG.kpis if k.kind == "formula"}
"""Recombined by the rules from the recorded ratios (deploy/prometheus/tests), not here."""
QUANTUM = Decimal("1e-10")

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z
Row = tuple[str, str, int, tuple[tuple[str, str], ...]]


def final(state: WorkerState, events: Iterable[Envelope]) -> list[KpiValue]:
    """Every value of `events` on one worker (one partition), all windows final."""
    part = state.assign(("pulse.events", 0))
    for event in events:
        part.apply(event)
    finalizer = Finalizer(state.config.catalog, state.config.windows, 0.0)
    ends = part.watermark.max_event_time
    return finalizer.final_values([part.store], math.inf, part.first_event_time, ends)


def merged(*workers: list[KpiValue]) -> dict[Row, Decimal]:
    """What the recording rules compute: flows summed; ratios as scale x sum(numerator) /
    sum(denominator), where that is not zero. Formulas left out (see `FORMULAS`)."""
    flows: dict[Row, Decimal] = {}
    ratios: dict[Row, tuple[Decimal, Decimal]] = {}
    for v in (v for values in workers for v in values if v.kpi not in FORMULAS):
        row = (v.kpi, v.window, v.start, v.labels)
        if v.numerator is None or v.denominator is None:
            assert v.value is not None
            flows[row] = flows.get(row, Decimal(0)) + v.value
        else:
            num, den = ratios.get(row, (Decimal(0), Decimal(0)))
            ratios[row] = (num + v.numerator, den + v.denominator)
    return flows | {
        row: (SCALES[row[0]] * num / den).quantize(QUANTUM)
        for row, (num, den) in ratios.items()
        if den != 0
    }


def alone(values: list[KpiValue]) -> dict[Row, Decimal]:
    """One worker's own values: what it computes when it sees every event."""
    return {
        (v.kpi, v.window, v.start, v.labels): v.value
        for v in values
        if v.value is not None and v.kpi not in FORMULAS
    }


def by_kpi(rows: dict[Row, Decimal], kpi: str, window: str) -> dict[tuple[Any, ...], Decimal]:
    return {labels: value for (k, w, _, labels), value in rows.items() if (k, w) == (kpi, window)}


def test_a_worker_with_costs_and_no_revenue_still_counts_in_the_margin(
    make_state: Callable[..., WorkerState], make_envelope: Callable[..., Envelope]
) -> None:
    sale = make_envelope(at=T0 + 10, amount="100.00")
    issue = make_envelope(type="inventory_issued", at=T0 + 20, amount="40.00")

    a, b = final(make_state(), [sale]), final(make_state(), [issue])
    only_costs = [v for v in b if v.kpi == "gross_margin_ratio" and v.window == "1m"]
    assert [(v.value, v.numerator, v.denominator) for v in only_costs] == [
        (None, Decimal("-40.00"), Decimal(0))
    ]
    margin = by_kpi(merged(a, b), "gross_margin_ratio", "1m")
    assert margin == {(("business_unit", "retail"), ("region", "eu")): Decimal("0.6")}
    together = alone(final(make_state(), [sale, issue]))
    assert merged(a, b) == together


def test_opex_of_a_cost_center_budgeted_on_another_worker_counts_in_the_variance(
    make_state: Callable[..., WorkerState], make_envelope: Callable[..., Envelope]
) -> None:
    def expense(at: int, amount: str) -> Envelope:
        return make_envelope(type="expense_posted", at=at, amount=amount)

    budget = make_envelope(
        type="budget_set", at=T0, amount="1000.00", period="2024-03", drop=("order_id",)
    )
    holder = [budget, expense(T0 + 60, "600.00")]
    other = [expense(T0 + 120, "500.00")]

    a, b = final(make_state(), holder), final(make_state(), other)
    variance = by_kpi(merged(a, b), "budget_variance_ratio", "1mo")
    assert variance == {(("cost_center", "cc-1"),): Decimal("0.1")}  # (1100 - 1000) / 1000
    assert merged(a, b) == alone(final(make_state(), holder + other))


def test_receivables_without_revenue_in_the_last_30_days_count_in_dso(
    make_state: Callable[..., WorkerState], make_envelope: Callable[..., Envelope]
) -> None:
    invoice = make_envelope(
        type="invoice_issued",
        at=T0 + 30,
        amount="300.00",
        drop=("order_id",),
        invoice_id="inv-1",
        customer_id="c-1",
    )
    sale = make_envelope(at=T0 + 40, amount="1500.00")

    a, b = final(make_state(), [sale]), final(make_state(), [invoice])
    dso = by_kpi(merged(a, b), "dso_days", "30d")
    assert dso == {(("business_unit", "retail"), ("region", "eu")): Decimal(6)}  # 300/1500 x 30
    assert merged(a, b) == alone(final(make_state(), [sale, invoice]))
