"""The rows `pulse backtest` must print for a ledger, computed the plain way.

This is an independent reading of docs/kpi-semantics.md: the stdlib `json`, `Decimal`,
`zoneinfo`, loops and dicts; nothing from `streams/` or `schemas/`. It walks the lines in arrival
order exactly as the document says (validity, duplicates, lateness against the watermark, the FX
rate in force, cent rounding per event), then builds every window and every row the document
defines. Validity is checked only as far as the invalid lines of `ledger.py` need (required and
known keys, types, ranges); it is not a second implementation of the contract.

Row keys are the CSV columns (kpi, window, window_start, window_end, dimensions); values are
Decimals: money and counts exact, ratios and days rounded to 10 places half-even, quantiles the
exact `sorted(values)[floor(q * (n - 1))]` (the engine's sketch is within 1% of it).

Balance and cumulative rows carry the bounds of the `1d` window they are reported at the end of
(`balance_bounds`): the document says "as of the end of each 1d window" without naming the start.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from ledger import SETTINGS_ENV

Key = tuple[str, str, str, str, str]

# --- the run's settings ------------------------------------------------------------------------

REPORTING = SETTINGS_ENV["PULSE_REPORTING_CURRENCY"]
ZONE = ZoneInfo(SETTINGS_ENV["PULSE_BUSINESS_TIMEZONE"])
DELAY = timedelta(seconds=float(SETTINGS_ENV["PULSE_WATERMARK_DELAY_SECONDS"]))
LATENESS = timedelta(seconds=float(SETTINGS_ENV["PULSE_ALLOWED_LATENESS_SECONDS"]))
RESTATEMENT = timedelta(days=float(SETTINGS_ENV["PULSE_RESTATEMENT_DAYS"]))
STATIC_RATES = {
    pair.split("=")[0]: Decimal(pair.split("=")[1])
    for pair in SETTINGS_ENV["PULSE_FX_RATES"].split(",")
}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST_VALID_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
CENT = Decimal("0.01")
TEN_PLACES = Decimal("1E-10")
QUANTILES = (Decimal("0.5"), Decimal("0.95"))

# --- which KPI is which kind: how the engine's value is compared -------------------------------

MONEY_KPIS = frozenset(
    {"revenue", "cogs", "opex", "ar_balance", "ap_balance", "inventory_value", "working_capital"}
)
COUNT_KPIS = frozenset({"orders"})
QUANTILE_KPIS = frozenset({"order_cycle_time_seconds"})
RATIO_KPIS = frozenset(
    {
        "average_order_value",
        "gross_margin_ratio",
        "operating_margin_ratio",
        "csat_ratio",
        "nps",
        "on_time_delivery_ratio",
        "roi_ratio",
        "dso_days",
        "dpo_days",
        "dio_days",
        "cash_conversion_cycle_days",
        "budget_variance_ratio",
    }
)


def kpi_kind(kpi: str) -> str:
    """'money', 'count', 'ratio' (ratios and days) or 'quantile'."""
    for kind, names in (
        ("money", MONEY_KPIS),
        ("count", COUNT_KPIS),
        ("ratio", RATIO_KPIS),
        ("quantile", QUANTILE_KPIS),
    ):
        if kpi in names:
            return kind
    raise KeyError(kpi)


RATIO_TOLERANCE = Decimal("1e-9")
QUANTILE_RELATIVE_TOLERANCE = Decimal("0.01")


def agrees(kpi: str, got: Decimal, want: Decimal) -> bool:
    """Money and counts exactly; ratios and days within 1e-9; quantiles within 1% (DDSketch)."""
    kind = kpi_kind(kpi)
    if kind in ("money", "count"):
        return got == want
    if kind == "ratio":
        return abs(got - want) <= RATIO_TOLERANCE
    return abs(got - want) <= abs(want) * QUANTILE_RELATIVE_TOLERANCE


# --- validity: enough of the contract for the lines the ledger contains -----------------------

MONEY_TYPES = frozenset(
    {
        "order_placed",
        "order_cancelled",
        "refund_issued",
        "inventory_issued",
        "inventory_received",
        "invoice_issued",
        "payment_received",
        "bill_received",
        "bill_paid",
        "expense_posted",
        "budget_set",
        "investment_made",
        "benefit_realized",
    }
)
# Typed fields per event type: (required, optional), on top of the envelope and, for money
# events, amount and currency.
TYPED_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "order_placed": ({"order_id"}, {"customer_id", "promised_delivery_at"}),
    "order_cancelled": ({"order_id"}, set()),
    "refund_issued": ({"order_id"}, set()),
    "inventory_issued": ({"sku", "quantity"}, {"order_id"}),
    "inventory_received": ({"sku", "quantity"}, set()),
    "invoice_issued": ({"invoice_id"}, {"customer_id", "due_at"}),
    "payment_received": ({"invoice_id"}, set()),
    "bill_received": ({"bill_id"}, {"supplier_id", "due_at"}),
    "bill_paid": ({"bill_id"}, set()),
    "expense_posted": ({"category"}, set()),
    "budget_set": ({"period"}, set()),
    "investment_made": (set(), set()),
    "benefit_realized": (set(), set()),
    "feedback_submitted": (set(), {"csat_score", "nps_score", "order_id"}),
    "shipment_dispatched": ({"order_id", "shipment_id"}, {"carrier"}),
    "shipment_delivered": ({"order_id", "shipment_id", "promised_delivery_at"}, set()),
    "fx_rate": ({"currency", "quote_currency", "rate"}, set()),
}
REQUIRED_DIMENSIONS = {
    "expense_posted": "cost_center",
    "budget_set": "cost_center",
    "investment_made": "initiative_id",
    "benefit_realized": "initiative_id",
}
DIMENSION_KEYS = {"business_unit", "region", "channel", "cost_center", "initiative_id"}
ENVELOPE = {"event_id", "type", "occurred_at", "source", "schema_version"}
LABEL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _instant(value: Any) -> datetime:
    """An RFC 3339 string with an offset, as an aware UTC datetime."""
    if not isinstance(value, str):
        raise Rejected("schema_violation")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected("schema_violation") from None
    if parsed.tzinfo is None:
        raise Rejected("schema_violation")
    return parsed.astimezone(UTC)


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str | int):
        raise Rejected("schema_violation")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise Rejected("schema_violation") from None
    if not number.is_finite():
        raise Rejected("non_finite_number")
    return number


def _check_keys(body: dict[str, Any], kind: str) -> None:
    required, optional = TYPED_FIELDS[kind]
    required = required | ENVELOPE
    if kind in MONEY_TYPES:
        required = required | {"amount", "currency"}
    if kind != "fx_rate":
        required = required | {"dimensions"}
    if not required <= body.keys() or not body.keys() <= required | optional:
        raise Rejected("schema_violation")
    if body["schema_version"] != 1 or not body["event_id"] or not body["source"]:
        raise Rejected("schema_violation")


def _check_dimensions(body: dict[str, Any], kind: str) -> None:
    if kind == "fx_rate":
        return
    dims = body["dimensions"]
    if not isinstance(dims, dict) or not dims.keys() <= DIMENSION_KEYS:
        raise Rejected("schema_violation")
    needed = {"business_unit", "region"}
    if kind in REQUIRED_DIMENSIONS:
        needed.add(REQUIRED_DIMENSIONS[kind])
    if not needed <= dims.keys():
        raise Rejected("schema_violation")
    if not all(isinstance(v, str) and LABEL.match(v) for v in dims.values()):
        raise Rejected("schema_violation")


def _check_money(body: dict[str, Any], kind: str) -> None:
    if kind in MONEY_TYPES:
        amount = _decimal(body["amount"])
        if amount <= 0 or -amount.as_tuple().exponent > 6:
            raise Rejected("schema_violation")
        if not CURRENCY.match(str(body["currency"])):
            raise Rejected("schema_violation")
    if kind == "fx_rate":
        if _decimal(body["rate"]) <= 0:
            raise Rejected("schema_violation")
        for name in ("currency", "quote_currency"):
            if not CURRENCY.match(str(body[name])):
                raise Rejected("schema_violation")


def _check_typed(body: dict[str, Any], kind: str) -> None:
    if kind == "budget_set" and not PERIOD.match(str(body["period"])):
        raise Rejected("schema_violation")
    if "promised_delivery_at" in body:
        _instant(body["promised_delivery_at"])
    if kind == "feedback_submitted":
        csat, nps = body.get("csat_score"), body.get("nps_score")
        if csat is None and nps is None:
            raise Rejected("schema_violation")
        if csat is not None and csat not in range(1, 6):
            raise Rejected("schema_violation")
        if nps is not None and nps not in range(11):
            raise Rejected("schema_violation")


def decode(line: bytes) -> dict[str, Any]:
    """The JSON object of a valid line, or Rejected with the reason the document names."""
    try:
        body = json.loads(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
        raise Rejected("undecodable") from None
    if not isinstance(body, dict):
        raise Rejected("schema_violation")
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in TYPED_FIELDS:
        raise Rejected("unknown_type")
    for name in ("amount", "rate"):
        if name in body:
            _decimal(body[name])  # non_finite_number before any other complaint
    _check_keys(body, kind)
    _check_dimensions(body, kind)
    _check_money(body, kind)
    _check_typed(body, kind)
    if _instant(body["occurred_at"]) < FIRST_VALID_INSTANT:
        raise Rejected("timestamp_out_of_range")
    return body


# --- arrival order: duplicates, lateness, FX -------------------------------------------------


@dataclass(frozen=True)
class Counted:
    """A counted event: its line, type, UTC event time, dimensions, EUR amount and fields."""

    line: int
    kind: str
    at: datetime
    dims: dict[str, str]
    eur: Decimal | None
    body: dict[str, Any]
    late: bool = False
    """Its 1-minute window was final: an expense then counts only in its month (a restatement)."""

    @property
    def series(self) -> tuple[str, str]:
        return (self.dims["business_unit"], self.dims["region"])


def minute_start(at: datetime) -> datetime:
    micros = (at - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=micros - micros % 60_000_000)


def rate_in_force(currency: str, at: datetime, rates: list[tuple[str, datetime, Decimal]]) -> Any:
    """EUR per unit of `currency` at `at`, from the fx_rate events processed so far, else the
    static table; None when neither knows the currency."""
    if currency == REPORTING:
        return Decimal(1)
    best: tuple[datetime, Decimal] | None = None
    for rate_currency, rate_at, rate in rates:
        if rate_currency == currency and rate_at <= at:
            if best is not None and rate_at == best[0]:
                raise AssertionError("two rates at the same instant: the ledger avoids this")
            if best is None or rate_at > best[0]:
                best = (rate_at, rate)
    if best is not None:
        return best[1]
    return STATIC_RATES.get(currency)


def local_month(at: datetime) -> str:
    """`YYYY-MM` of the business-time-zone month holding `at`."""
    local = at.astimezone(ZONE)
    return f"{local.year:04d}-{local.month:02d}"


def closed_beyond_horizon(period: str, at: datetime, newest: datetime | None) -> bool:
    """A period's events restate it until its month's end + lateness + the restatement
    horizon passes the later of the watermark and the event's own time; then they are late."""
    year, month = (int(part) for part in period.split("-"))
    _, end = month_bounds(year, month)
    judged = at if newest is None else max(at, newest - DELAY)
    return end + LATENESS + RESTATEMENT <= judged


def process(lines: list[bytes]) -> tuple[list[Counted], dict[int, str]]:
    """Walk the lines in arrival order: (counted events, {line number: rejection reason})."""
    counted: list[Counted] = []
    rejected: dict[int, str] = {}
    seen_ids: set[str] = set()
    rates: list[tuple[str, datetime, Decimal]] = []
    newest: datetime | None = None
    for number, line in enumerate(lines, start=1):
        try:
            body = decode(line)
        except Rejected as why:
            rejected[number] = why.reason
            continue
        at = _instant(body["occurred_at"])
        if body["event_id"] in seen_ids:
            rejected[number] = "duplicate"
            continue
        late = False
        if newest is not None:
            watermark = newest - DELAY
            if minute_start(at) + timedelta(minutes=1) + LATENESS <= watermark:
                # Only an expense feeds a month (budget variance): late, it still counts there
                # while its month can be restated.
                if body["type"] != "expense_posted" or closed_beyond_horizon(
                    local_month(at), at, newest
                ):
                    rejected[number] = "late"
                    continue
                late = True
        if body["type"] == "budget_set" and closed_beyond_horizon(body["period"], at, newest):
            rejected[number] = "late"
            continue
        eur = None
        if body["type"] in MONEY_TYPES:
            rate = rate_in_force(body["currency"], at, rates)
            if rate is None:
                rejected[number] = "unknown_currency"
                continue
            eur = (Decimal(body["amount"]) * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)
        seen_ids.add(body["event_id"])
        if late:  # moves no watermark, counts in no minute, hour or day
            counted.append(Counted(number, body["type"], at, body["dimensions"], eur, body, True))
            continue
        newest = at if newest is None else max(newest, at)
        if body["type"] == "fx_rate" and body["quote_currency"] == REPORTING:
            rates.append((body["currency"], at, Decimal(body["rate"])))
        dims = body.get("dimensions", {})
        counted.append(Counted(number, body["type"], at, dims, eur, body))
    return counted, rejected


def expected_rejections(lines: list[bytes]) -> dict[int, str]:
    """1-based line number -> reason, for every line that must not be counted."""
    return process(lines)[1]


# --- windows ---------------------------------------------------------------------------------


def business_day(at: datetime) -> date:
    return at.astimezone(ZONE).date()


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZONE).astimezone(UTC)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The business day [00:00, 24:00) local time, in UTC (23 or 25 h on DST change days)."""
    return local_midnight(day), local_midnight(day + timedelta(days=1))


def tumbling_bounds(at: datetime, seconds: int) -> tuple[datetime, datetime]:
    micros = (at - EPOCH) // timedelta(microseconds=1)
    size = seconds * 1_000_000
    start = EPOCH + timedelta(microseconds=micros - micros % size)
    return start, start + timedelta(seconds=seconds)


def flow_windows(at: datetime) -> list[tuple[str, datetime, datetime]]:
    return [
        ("1m", *tumbling_bounds(at, 60)),
        ("5m", *tumbling_bounds(at, 300)),
        ("1h", *tumbling_bounds(at, 3600)),
        ("1d", *day_bounds(business_day(at))),
    ]


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return local_midnight(date(year, month, 1)), local_midnight(date(next_year, next_month, 1))


def balance_bounds(day: date) -> tuple[datetime, datetime]:
    """The bounds printed on a balance/cumulative row reported at the end of `day`."""
    return day_bounds(day)


def trailing_bounds(day: date) -> tuple[datetime, datetime]:
    """The 30 business days ending with `day`."""
    return local_midnight(day - timedelta(days=29)), day_bounds(day)[1]


# --- output format ---------------------------------------------------------------------------


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dimension_text(dims: dict[str, str]) -> str:
    return ";".join(f"{name}={dims[name]}" for name in sorted(dims))


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    """An exact decimal division rounded to 10 places, half-even."""
    with localcontext() as context:
        context.prec = 60
        return (numerator / denominator).quantize(TEN_PLACES, rounding=ROUND_HALF_EVEN)


class Rows(dict[Key, Decimal]):
    def put(
        self,
        kpi: str,
        window: str,
        bounds: tuple[datetime, datetime],
        dims: dict[str, str],
        value: Decimal,
    ) -> None:
        key = (kpi, window, rfc3339(bounds[0]), rfc3339(bounds[1]), dimension_text(dims))
        if key in self:
            raise AssertionError(f"row computed twice: {key}")
        self[key] = value


# --- flow KPIs: 1m, 5m, 1h, 1d ---------------------------------------------------------------


@dataclass
class FlowWindow:
    """The inputs of every flow KPI for one (window, business_unit, region)."""

    revenue: Decimal = Decimal(0)
    revenue_events: int = 0
    cogs: Decimal = Decimal(0)
    cogs_events: int = 0
    orders: int = 0
    opex: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    csat_answers: int = 0
    csat_satisfied: int = 0
    nps_answers: int = 0
    promoters: int = 0
    detractors: int = 0
    deliveries: int = 0
    on_time: int = 0
    cycle_seconds: list[Decimal] = field(default_factory=list)


def _add_to_flow(window: FlowWindow, event: Counted, placed_at: dict[str, datetime]) -> None:
    body = event.body
    if event.kind == "order_placed":
        window.revenue += event.eur
        window.revenue_events += 1
        window.orders += 1
    elif event.kind in ("order_cancelled", "refund_issued"):
        window.revenue -= event.eur
        window.revenue_events += 1
    elif event.kind == "inventory_issued":
        window.cogs += event.eur
        window.cogs_events += 1
    elif event.kind == "expense_posted":
        cell = (event.dims["cost_center"], body["category"])
        window.opex[cell] = window.opex.get(cell, Decimal(0)) + event.eur
    elif event.kind == "feedback_submitted":
        _add_feedback(window, body)
    elif event.kind == "shipment_delivered":
        _add_delivery(window, event, placed_at)


def _add_feedback(window: FlowWindow, body: dict[str, Any]) -> None:
    if body.get("csat_score") is not None:
        window.csat_answers += 1
        if body["csat_score"] >= 4:
            window.csat_satisfied += 1
    if body.get("nps_score") is not None:
        window.nps_answers += 1
        if body["nps_score"] >= 9:
            window.promoters += 1
        if body["nps_score"] <= 6:
            window.detractors += 1


def _add_delivery(window: FlowWindow, event: Counted, placed_at: dict[str, datetime]) -> None:
    window.deliveries += 1
    if event.at <= _instant(event.body["promised_delivery_at"]):
        window.on_time += 1
    placed = placed_at.get(event.body["order_id"])
    if placed is not None:  # a delivery whose order was never counted has no cycle time
        micros = (event.at - placed) // timedelta(microseconds=1)
        window.cycle_seconds.append(Decimal(micros) / Decimal(1_000_000))


FLOW_INPUTS = frozenset(
    {
        "order_placed",
        "order_cancelled",
        "refund_issued",
        "inventory_issued",
        "expense_posted",
        "feedback_submitted",
        "shipment_delivered",
    }
)


def exact_quantile(values: list[Decimal], q: Decimal) -> Decimal:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def _emit_flow(rows: Rows, window: str, bounds: Any, series: Any, w: FlowWindow) -> None:
    dims = {"business_unit": series[0], "region": series[1]}
    if w.revenue_events:
        rows.put("revenue", window, bounds, dims, w.revenue)
    if w.cogs_events:
        rows.put("cogs", window, bounds, dims, w.cogs)
    if w.orders:
        rows.put("orders", window, bounds, dims, Decimal(w.orders))
        rows.put("average_order_value", window, bounds, dims, ratio(w.revenue, Decimal(w.orders)))
    if w.revenue != 0:
        margin = ratio(w.revenue - w.cogs, w.revenue)
        rows.put("gross_margin_ratio", window, bounds, dims, margin)
        opex_total = sum(w.opex.values(), Decimal(0))
        operating = ratio(w.revenue - w.cogs - opex_total, w.revenue)
        rows.put("operating_margin_ratio", window, bounds, dims, operating)
    for (cost_center, category), amount in w.opex.items():
        opex_dims = {**dims, "cost_center": cost_center, "category": category}
        rows.put("opex", window, bounds, opex_dims, amount)
    if w.csat_answers:
        value = ratio(Decimal(w.csat_satisfied), Decimal(w.csat_answers))
        rows.put("csat_ratio", window, bounds, dims, value)
    if w.nps_answers:
        value = ratio(Decimal((w.promoters - w.detractors) * 100), Decimal(w.nps_answers))
        rows.put("nps", window, bounds, dims, value)
    if w.deliveries:
        value = ratio(Decimal(w.on_time), Decimal(w.deliveries))
        rows.put("on_time_delivery_ratio", window, bounds, dims, value)
    if w.cycle_seconds:
        for q in QUANTILES:
            q_dims = {**dims, "quantile": str(q)}
            value = exact_quantile(w.cycle_seconds, q)
            rows.put("order_cycle_time_seconds", window, bounds, q_dims, value)


def flow_rows(rows: Rows, events: list[Counted]) -> None:
    placed_at = {e.body["order_id"]: e.at for e in events if e.kind == "order_placed"}
    windows: dict[tuple[str, datetime, datetime, tuple[str, str]], FlowWindow] = {}
    for event in events:
        if event.kind not in FLOW_INPUTS:
            continue
        for name, start, end in flow_windows(event.at):
            key = (name, start, end, event.series)
            if key not in windows:
                windows[key] = FlowWindow()
            _add_to_flow(windows[key], event, placed_at)
    for (name, start, end, series), inputs in windows.items():
        _emit_flow(rows, name, (start, end), series, inputs)


# --- running KPIs (balance, cumulative) and trailing KPIs (30d), at the end of each day -------

BALANCE_SIGNS = {
    "ar_balance": {"invoice_issued": 1, "payment_received": -1},
    "ap_balance": {"bill_received": 1, "bill_paid": -1},
    "inventory_value": {"inventory_received": 1, "inventory_issued": -1},
}
REVENUE_SIGNS = {"order_placed": 1, "order_cancelled": -1, "refund_issued": -1}


def reporting_days(events: list[Counted]) -> list[date]:
    """Every business day from the first with a counted event to the last one."""
    first = min(business_day(e.at) for e in events)
    last = max(business_day(e.at) for e in events)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def balances_at(events: list[Counted], end: datetime) -> dict[str, dict[tuple[str, str], Decimal]]:
    """{kpi: {series: balance}} of the series with an event at or before `end`; the balance sums
    the events with occurred_at < end."""
    result: dict[str, dict[tuple[str, str], Decimal]] = {kpi: {} for kpi in BALANCE_SIGNS}
    for kpi, signs in BALANCE_SIGNS.items():
        for event in events:
            if event.kind in signs and event.at <= end:
                total = result[kpi].get(event.series, Decimal(0))
                if event.at < end:
                    total += signs[event.kind] * event.eur
                result[kpi][event.series] = total
    return result


def running_rows(rows: Rows, events: list[Counted]) -> None:
    for day in reporting_days(events):
        bounds = balance_bounds(day)
        end = day_bounds(day)[1]
        balances = balances_at(events, end)
        all_series = set().union(*(b.keys() for b in balances.values()))
        for kpi, per_series in balances.items():
            for series, value in per_series.items():
                dims = {"business_unit": series[0], "region": series[1]}
                rows.put(kpi, "balance", bounds, dims, value)
        for series in all_series:
            ar = balances["ar_balance"].get(series, Decimal(0))
            inventory = balances["inventory_value"].get(series, Decimal(0))
            ap = balances["ap_balance"].get(series, Decimal(0))
            dims = {"business_unit": series[0], "region": series[1]}
            rows.put("working_capital", "balance", bounds, dims, ar + inventory - ap)
        _roi_rows(rows, events, day)
        _trailing_rows(rows, events, day, balances)


def _roi_rows(rows: Rows, events: list[Counted], day: date) -> None:
    end = day_bounds(day)[1]
    invested: dict[str, Decimal] = defaultdict(Decimal)
    realized: dict[str, Decimal] = defaultdict(Decimal)
    for event in events:
        if event.at >= end:
            continue
        if event.kind == "investment_made":
            invested[event.dims["initiative_id"]] += event.eur
        elif event.kind == "benefit_realized":
            realized[event.dims["initiative_id"]] += event.eur
    for initiative, investment in invested.items():
        if investment != 0:
            value = ratio(realized[initiative] - investment, investment)
            dims = {"initiative_id": initiative}
            rows.put("roi_ratio", "cumulative", balance_bounds(day), dims, value)


def _trailing_rows(rows: Rows, events: list[Counted], day: date, balances: Any) -> None:
    bounds = trailing_bounds(day)
    revenue: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    cogs: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for event in events:
        if not bounds[0] <= event.at < bounds[1]:
            continue
        if event.kind in REVENUE_SIGNS:
            revenue[event.series] += REVENUE_SIGNS[event.kind] * event.eur
        elif event.kind == "inventory_issued":
            cogs[event.series] += event.eur
    for series in set(revenue) | set(cogs):
        dims = {"business_unit": series[0], "region": series[1]}
        for kpi, value in _days(series, revenue[series], cogs[series], balances).items():
            rows.put(kpi, "30d", bounds, dims, value)


def _days(
    series: tuple[str, str], revenue: Decimal, cogs: Decimal, balances: Any
) -> dict[str, Decimal]:
    """DSO, DPO, DIO and the cash conversion cycle of one series, those that exist."""
    thirty = Decimal(30)
    exact: dict[str, Decimal] = {}
    with localcontext() as context:
        context.prec = 60
        if revenue != 0:
            # The ledger gives every trading series all three balances from its first day, so
            # the ratio of a balance that does not exist yet never arises.
            assert series in balances["ar_balance"], series
            exact["dso_days"] = balances["ar_balance"][series] * thirty / revenue
        if cogs != 0:
            assert series in balances["ap_balance"], series
            assert series in balances["inventory_value"], series
            exact["dpo_days"] = balances["ap_balance"][series] * thirty / cogs
            exact["dio_days"] = balances["inventory_value"][series] * thirty / cogs
        if len(exact) == 3:
            cycle = exact["dso_days"] + exact["dio_days"] - exact["dpo_days"]
            exact["cash_conversion_cycle_days"] = cycle
        return {kpi: ratio(value, Decimal(1)) for kpi, value in exact.items()}


# --- period KPI: budget variance per calendar month ------------------------------------------


def budget_rows(rows: Rows, events: list[Counted]) -> None:
    latest: dict[tuple[str, str], Counted] = {}
    for event in events:
        if event.kind != "budget_set":
            continue
        key = (event.dims["cost_center"], event.body["period"])
        if key in latest and latest[key].at == event.at:
            raise AssertionError("two budgets at the same instant: the ledger avoids this")
        if key not in latest or event.at > latest[key].at:
            latest[key] = event
    for (cost_center, period), chosen in latest.items():
        budget = chosen.eur
        if budget is None or budget == 0:
            continue
        actual = Decimal(0)
        for event in events:
            in_month = local_month(event.at) == period
            ours = event.kind == "expense_posted" and event.dims["cost_center"] == cost_center
            if ours and in_month:
                actual += event.eur
        year, month = (int(part) for part in period.split("-"))
        value = ratio(actual - budget, budget)
        dims = {"cost_center": cost_center}
        rows.put("budget_variance_ratio", "1mo", month_bounds(year, month), dims, value)


def expected_rows(lines: list[bytes]) -> dict[Key, Decimal]:
    """Every row `pulse backtest` prints for these lines, keyed as the CSV columns are."""
    events, _ = process(lines)
    rows = Rows()
    on_time = [e for e in events if not e.late]
    flow_rows(rows, on_time)
    running_rows(rows, on_time)
    budget_rows(rows, events)  # late expenses count in their month
    return dict(rows)
