"""The catalog is checked against the contract at start; each error names the KPI or measure."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from streams.core.catalog import CATALOG, Catalog, Kpi, Measure, Where
from streams.core.compiler import CatalogError, compile_catalog


def with_kpi(kpi: Kpi) -> Catalog:
    return dataclasses.replace(CATALOG, kpis=(*CATALOG.kpis, kpi))


def with_measure(measure: Measure) -> Catalog:
    return dataclasses.replace(CATALOG, measures=(*CATALOG.measures, measure))


def test_the_standard_catalog_compiles_with_every_kpi_of_the_design() -> None:
    compiled = compile_catalog()
    assert set(compiled.kpis) == {
        "revenue", "cogs", "gross_margin_ratio", "opex", "operating_margin_ratio", "roi_ratio",
        "budget_variance_ratio", "ar_balance", "ap_balance", "inventory_value", "dso_days",
        "dpo_days", "dio_days", "cash_conversion_cycle_days", "working_capital", "csat_ratio",
        "nps", "on_time_delivery_ratio", "order_cycle_time_seconds", "orders",
        "average_order_value",
    }  # fmt: skip
    # Flow measures are kept per minute and business day only; 5m/1h are summed from minutes.
    assert compiled.storage_windows["revenue"] == ("1d", "1m")
    assert compiled.storage_windows["ar"] == ("1d",)
    assert compiled.storage_windows["budget"] == ("1mo",)


@pytest.mark.parametrize(
    ("catalog", "message"),
    [
        (with_measure(Measure("bogus", "sum", {"order_teleported": 1})),
         "measure 'bogus': unknown event type 'order_teleported'"),
        (with_measure(Measure("bogus", "sum", {"order_placed": 1}, field="price")),
         "measure 'bogus': order_placed has no field 'price' to sum"),
        (with_measure(Measure("bogus", "count", {"fx_rate": 1}, field=None)),
         "measure 'bogus': fx_rate has no dimensions"),
        (with_measure(Measure("bogus", "count", {"feedback_submitted": 1}, field=None,
                              where=Where("stars", ">=", 4))),
         "measure 'bogus': filter on unknown field 'stars'"),
        (with_kpi(Kpi("profit", "x", "flow", "currency", {"profits": 1})),
         "KPI 'profit': numerator refers to unknown measure 'profits'"),
        (with_kpi(Kpi("profit", "x", "flow", "dollars", {"revenue": 1})),  # type: ignore[arg-type]
         "KPI 'profit': unknown unit 'dollars'"),
        (with_kpi(Kpi("profit", "x", "flow", "currency", {"revenue": 1}, windows=("2w",))),
         "KPI 'profit': windows ['2w'] not allowed"),
        (with_kpi(Kpi("profit", "x", "flow", "currency", {"revenue": 1},
                      dims=("business_unit", "channel"))),
         "KPI 'profit': dimensions ['business_unit', 'channel'] are not all kept by measure"),
        (with_kpi(Kpi("margin", "x", "ratio", "ratio", {"revenue": 1})),
         "KPI 'margin': ratios, and only they, have a denominator"),
        (with_kpi(Kpi("revenue", "x", "flow", "currency", {"revenue": 1})),
         "KPI 'revenue' is declared twice"),
    ],
)  # fmt: skip
def test_a_catalog_error_names_what_is_wrong(catalog: Catalog, message: str) -> None:
    with pytest.raises(CatalogError, match=message.replace("[", r"\[").replace("]", r"\]")):
        compile_catalog(catalog)


def test_a_cycle_among_formulas_is_refused_naming_it() -> None:
    a = Kpi("a_days", "x", "formula", "days", {"b_days": 1}, windows=("30d",))
    b = Kpi("b_days", "x", "formula", "days", {"a_days": 1}, windows=("30d",))
    catalog = dataclasses.replace(CATALOG, kpis=(*CATALOG.kpis, a, b))
    with pytest.raises(CatalogError, match="formula cycle a_days -> b_days -> a_days"):
        compile_catalog(catalog)


def test_adding_a_kpi_is_a_few_lines_of_data() -> None:
    # Refund rate: refunds per order, a ratio of two new counts, no code anywhere else.
    refunds = Measure("refunds", "count", {"refund_issued": 1}, field=None)
    kpi = Kpi("refund_rate_ratio", "Refunds per order.", "ratio", "ratio",
              {"refunds": 1}, {"orders": 1}, thresholds=None, scale=Decimal(1))  # fmt: skip
    catalog = dataclasses.replace(
        CATALOG, measures=(*CATALOG.measures, refunds), kpis=(*CATALOG.kpis, kpi)
    )
    compiled = compile_catalog(catalog)
    assert [c.measure.name for c in compiled.by_event["refund_issued"]] == ["revenue", "refunds"]


def test_a_batched_contribution_keeps_its_measure_storage_windows() -> None:
    """`PartitionState.flush` adds a batch's groups to `storage_windows[measure]`: the windows
    the hot path would have added each event to one by one."""
    catalog = compile_catalog()
    batched = [c for cs in catalog.by_event.values() for c in cs if c.batched]
    assert batched
    assert all(c.windows == catalog.storage_windows[c.name] for c in batched)
