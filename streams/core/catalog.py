"""The KPI catalog: every KPI declared once, as data.

Two layers:
- **Measures** are what the stream accumulates per event: a signed sum of an event field (money is
  converted to the reporting currency), a count, the latest value, or a quantile sketch. Each has
  the dimensions it is kept at and the event types (with a sign) that feed it.
- **KPIs** are what users see. Each is computed from measures (or, for formulas, from other KPIs)
  per window, and declares its dimensions (a subset of its measures' dimensions: finer measures are
  summed up), windows and unit. Ratios keep numerator and denominator additive, so `sum()` across
  workers and dimensions stays correct.

The definitions and the exact emission rules are in docs/kpi-semantics.md. `compile_catalog`
(`streams.core.compiler`) checks this data against the event contract and fails at start, naming
the KPI, when something is off. Adding a KPI is a few lines here; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeAlias

MeasureKind: TypeAlias = Literal["sum", "count", "latest", "quantile"]
KpiKind: TypeAlias = Literal[
    "flow",
    "ratio",
    "balance",
    "cumulative_ratio",
    "trailing_ratio",
    "formula",
    "period_variance",
    "quantile",
]
RATIO_KINDS: frozenset[KpiKind] = frozenset(
    {"ratio", "cumulative_ratio", "trailing_ratio", "period_variance"}
)
"""Kinds of KPI computed as numerator / denominator: both parts are exported too, so that
sum(numerator) / sum(denominator) is exact across workers (the exporter, the rules and the
boards all read this one set)."""
Unit: TypeAlias = Literal["currency", "ratio", "count", "days", "seconds", "score"]
Domain: TypeAlias = Literal["sales", "spend", "customer", "delivery", "working_capital"]
"""Where a KPI lives on the ops boards: one Grafana board per domain, and the alert's link."""
Linear: TypeAlias = Mapping[str, int]
"""A linear combination of measures (or, for formulas, of KPIs): name → coefficient."""

FLOW_WINDOWS = ("1m", "5m", "1h", "1d")
BU_REGION = ("business_unit", "region")
UNITS: frozenset[str] = frozenset(Unit.__args__)  # type: ignore[attr-defined]
DOMAINS: tuple[str, ...] = Domain.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Where:
    """Keep an event only if `field op value`; `op` "present" ignores `value`; "le_field" compares
    with another field of the same event (`value` names it; `occurred_at` is allowed)."""

    field: str
    op: Literal[">=", "<=", "present", "le_field"]
    value: int | str | None = None


@dataclass(frozen=True, slots=True)
class Join:
    """Pair each event of the measure with the earlier `start` event sharing `key`; the measured
    value is the time between them in seconds."""

    start: str
    key: str


@dataclass(frozen=True, slots=True)
class Measure:
    name: str
    kind: MeasureKind
    events: Mapping[str, int]
    dims: tuple[str, ...] = BU_REGION
    field: str | None = "amount"
    where: Where | None = None
    join: Join | None = None
    period_field: str | None = None
    """For `latest` measures kept per calendar month: the event field naming the month."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Optional static bounds: a value outside them is an anomaly whatever the detectors say."""

    warning_below: Decimal | None = None
    warning_above: Decimal | None = None
    critical_below: Decimal | None = None
    critical_above: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Kpi:
    name: str
    description: str
    kind: KpiKind
    unit: Unit
    numerator: Linear
    denominator: Linear | None = None
    dims: tuple[str, ...] = BU_REGION
    windows: tuple[str, ...] = FLOW_WINDOWS
    scale: Decimal = Decimal(1)
    trailing_days: int = 0
    quantiles: tuple[Decimal, ...] = ()
    thresholds: Thresholds | None = None
    domain: Domain = "sales"
    title: str = ""
    """What people call it on boards and in alerts ("Gross margin"); default: the name."""

    @property
    def label(self) -> str:
        return self.title or self.name


@dataclass(frozen=True, slots=True)
class Catalog:
    measures: tuple[Measure, ...]
    kpis: tuple[Kpi, ...]


MONEY_MEASURES = (
    Measure("revenue", "sum", {"order_placed": 1, "order_cancelled": -1, "refund_issued": -1}),
    Measure("cogs", "sum", {"inventory_issued": 1}),
    Measure("opex", "sum", {"expense_posted": 1}, dims=(*BU_REGION, "cost_center", "category")),
    Measure("ar", "sum", {"invoice_issued": 1, "payment_received": -1}),
    Measure("ap", "sum", {"bill_received": 1, "bill_paid": -1}),
    Measure("inventory", "sum", {"inventory_received": 1, "inventory_issued": -1}),
    Measure("investment", "sum", {"investment_made": 1}, dims=("initiative_id",)),
    Measure("benefit", "sum", {"benefit_realized": 1}, dims=("initiative_id",)),
    Measure("budget", "latest", {"budget_set": 1}, dims=("cost_center",), period_field="period"),
)

COUNT_MEASURES = (
    Measure("orders", "count", {"order_placed": 1}, field=None),
    Measure(
        "csat_responses",
        "count",
        {"feedback_submitted": 1},
        field=None,
        where=Where("csat_score", "present"),
    ),
    Measure(
        "csat_satisfied",
        "count",
        {"feedback_submitted": 1},
        field=None,
        where=Where("csat_score", ">=", 4),
    ),
    Measure(
        "nps_responses",
        "count",
        {"feedback_submitted": 1},
        field=None,
        where=Where("nps_score", "present"),
    ),
    Measure(
        "nps_promoters",
        "count",
        {"feedback_submitted": 1},
        field=None,
        where=Where("nps_score", ">=", 9),
    ),
    Measure(
        "nps_detractors",
        "count",
        {"feedback_submitted": 1},
        field=None,
        where=Where("nps_score", "<=", 6),
    ),
    Measure("deliveries", "count", {"shipment_delivered": 1}, field=None),
    Measure(
        "deliveries_on_time",
        "count",
        {"shipment_delivered": 1},
        field=None,
        where=Where("occurred_at", "le_field", "promised_delivery_at"),
    ),
    Measure(
        "cycle_time",
        "quantile",
        {"shipment_delivered": 1},
        field=None,
        join=Join(start="order_placed", key="order_id"),
    ),
)

KPIS = (
    Kpi(
        "revenue",
        "Orders minus cancellations and refunds.",
        "flow",
        "currency",
        {"revenue": 1},
        title="Revenue",
    ),
    Kpi("cogs", "Cost of goods issued.", "flow", "currency", {"cogs": 1}, title="COGS"),
    Kpi("orders", "Orders placed.", "flow", "count", {"orders": 1}, title="Orders"),
    Kpi(
        "average_order_value",
        "Revenue per order placed.",
        "ratio",
        "currency",
        {"revenue": 1},
        {"orders": 1},
        title="Average order value",
    ),
    Kpi(
        "gross_margin_ratio",
        "(Revenue - COGS) / revenue.",
        "ratio",
        "ratio",
        {"revenue": 1, "cogs": -1},
        {"revenue": 1},
        thresholds=Thresholds(warning_below=Decimal("0.2"), critical_below=Decimal("0")),
        title="Gross margin",
    ),
    Kpi(
        "opex",
        "Operating expenses by cost center and category.",
        "flow",
        "currency",
        {"opex": 1},
        dims=(*BU_REGION, "cost_center", "category"),
        domain="spend",
        title="OpEx",
    ),
    Kpi(
        "operating_margin_ratio",
        "(Revenue - COGS - OpEx) / revenue.",
        "ratio",
        "ratio",
        {"revenue": 1, "cogs": -1, "opex": -1},
        {"revenue": 1},
        domain="spend",
        title="Operating margin",
    ),
    Kpi(
        "csat_ratio",
        "Share of CSAT answers scoring 4 or 5.",
        "ratio",
        "ratio",
        {"csat_satisfied": 1},
        {"csat_responses": 1},
        thresholds=Thresholds(warning_below=Decimal("0.7")),
        domain="customer",
        title="CSAT",
    ),
    Kpi(
        "nps",
        "Net promoter score: promoters minus detractors, per 100 answers.",
        "ratio",
        "score",
        {"nps_promoters": 1, "nps_detractors": -1},
        {"nps_responses": 1},
        scale=Decimal(100),
        domain="customer",
        title="NPS",
    ),
    Kpi(
        "on_time_delivery_ratio",
        "Deliveries on or before the promised time.",
        "ratio",
        "ratio",
        {"deliveries_on_time": 1},
        {"deliveries": 1},
        thresholds=Thresholds(warning_below=Decimal("0.85"), critical_below=Decimal("0.7")),
        domain="delivery",
        title="On-time delivery",
    ),
    Kpi(
        "order_cycle_time_seconds",
        "Order placed to delivered, p50 and p95.",
        "quantile",
        "seconds",
        {"cycle_time": 1},
        quantiles=(Decimal("0.5"), Decimal("0.95")),
        domain="delivery",
        title="Order cycle time",
    ),
    Kpi(
        "ar_balance",
        "Accounts receivable: invoiced minus paid.",
        "balance",
        "currency",
        {"ar": 1},
        windows=("balance",),
        domain="working_capital",
        title="AR balance",
    ),
    Kpi(
        "ap_balance",
        "Accounts payable: billed minus paid.",
        "balance",
        "currency",
        {"ap": 1},
        windows=("balance",),
        domain="working_capital",
        title="AP balance",
    ),
    Kpi(
        "inventory_value",
        "Stock at cost: received minus issued.",
        "balance",
        "currency",
        {"inventory": 1},
        windows=("balance",),
        domain="working_capital",
        title="Inventory value",
    ),
    Kpi(
        "working_capital",
        "AR + inventory - AP.",
        "balance",
        "currency",
        {"ar": 1, "inventory": 1, "ap": -1},
        windows=("balance",),
        domain="working_capital",
        title="Working capital",
    ),
    Kpi(
        "roi_ratio",
        "(Benefit - investment) / investment per initiative, cumulative.",
        "cumulative_ratio",
        "ratio",
        {"benefit": 1, "investment": -1},
        {"investment": 1},
        dims=("initiative_id",),
        windows=("cumulative",),
        domain="spend",
        title="ROI",
    ),
    Kpi(
        "dso_days",
        "Days sales outstanding: AR / revenue of the trailing 30 days x 30.",
        "trailing_ratio",
        "days",
        {"ar": 1},
        {"revenue": 1},
        windows=("30d",),
        scale=Decimal(30),
        trailing_days=30,
        domain="working_capital",
        title="DSO",
    ),
    Kpi(
        "dpo_days",
        "Days payables outstanding: AP / COGS of the trailing 30 days x 30.",
        "trailing_ratio",
        "days",
        {"ap": 1},
        {"cogs": 1},
        windows=("30d",),
        scale=Decimal(30),
        trailing_days=30,
        domain="working_capital",
        title="DPO",
    ),
    Kpi(
        "dio_days",
        "Days inventory outstanding: inventory / COGS of 30 days x 30.",
        "trailing_ratio",
        "days",
        {"inventory": 1},
        {"cogs": 1},
        windows=("30d",),
        scale=Decimal(30),
        trailing_days=30,
        domain="working_capital",
        title="DIO",
    ),
    Kpi(
        "cash_conversion_cycle_days",
        "DSO + DIO - DPO.",
        "formula",
        "days",
        {"dso_days": 1, "dio_days": 1, "dpo_days": -1},
        windows=("30d",),
        domain="working_capital",
        title="Cash conversion cycle",
    ),
    Kpi(
        "budget_variance_ratio",
        "(OpEx - budget) / budget per cost center and month.",
        "period_variance",
        "ratio",
        {"opex": 1},
        {"budget": 1},
        dims=("cost_center",),
        windows=("1mo",),
        thresholds=Thresholds(warning_above=Decimal("0.1"), critical_above=Decimal("0.25")),
        domain="spend",
        title="Budget variance",
    ),
)

CATALOG = Catalog(measures=MONEY_MEASURES + COUNT_MEASURES, kpis=KPIS)
"""The standard KPI set of DESIGN.md."""

FOLLOWS: Mapping[str, tuple[str, ...]] = {
    "order_cancelled": ("order_placed",),
    "refund_issued": ("order_placed",),
    "inventory_issued": ("order_placed",),
    "shipment_dispatched": ("order_placed",),
    "shipment_delivered": ("shipment_dispatched",),
    "invoice_issued": ("order_placed",),
    "payment_received": ("invoice_issued",),
    "bill_paid": ("bill_received",),
    "feedback_submitted": ("shipment_delivered",),
    "benefit_realized": ("investment_made",),
}
"""The business flow: the event types each event type follows (an order's goods are issued,
shipped, delivered, invoiced and paid). Fewer orders mean less cost of goods a moment later, so
a COGS alert opening beside a revenue dip of the same scope is the same incident
(`streams.detection.incidents` links alerts through it); staleness does not use it (a stale
`order_placed` holds revenue, not shipments)."""
