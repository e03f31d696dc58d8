"""A deterministic generator of a company's event stream, valid and bad, for demos and tests.

(Longer than most modules: the company's whole behaviour, one event type after another, kept in
one place so that its seeded sequence is easy to follow.)

The company: business units `retail`, `wholesale` and `marketplace`, regions `emea`, `amer` and
`apac` (one cost center `cc-<bu>-<1|2|3>` per unit and region), channels `web`, `store`, `partner`.
Messages arrive as a Poisson process on a simulated clock whose rate follows the time of day in
UTC (`rate` x ~0.35 at midnight, x ~1.65 at noon, a cosine whose daily mean is exactly `rate`;
`daily_amplitude`, 0.65 by default, sets how far it swings: 0 is a flat day).
Each is bad with probability `bad_ratio` (kind uniform over `BAD_KINDS`), else the next valid event:
the follow-up due earliest, if one is due, or a fresh event drawn with `_FRESH_WEIGHTS`.
Follow-ups: an order's dispatch then delivery (every order not sold in a store ships); an invoice
at dispatch (most wholesale orders) then its payment(s); a restock when a unit's stock falls below
its reorder point, then the supplier's bill and its payment(s); `fx_rate` USD and GBP into EUR
every 6 hours; each cost center's `budget_set` at each new UTC month. Rates, budgets and opening
stock are due at the start, so they come first. Follow-ups use arrival slots, so the daily mean
stays `rate`; they are about half of the valid events, and `order_placed` ~30%.

Lead times are compressed, a day of them to half a simulated hour, so that a day's run sees
orders delivered and invoices paid: delivery is promised 1-3 such days out, and ~88% arrive in
time (fewer below ~0.1 events/s, where a follow-up waits long for an arrival slot).
Order values are lognormal around a per-business-unit mean; EMEA pays in EUR (~20% GBP), the rest
in USD. Reversals, cost of goods and feedback refer to a recent order; a cancelled or refunded
order leaves the pool, so the money taken off an order never exceeds its value.

A weekly shape is optional: with `weekly_amplitude` a, the rate is x (1 - a) on Saturday and
Sunday (UTC) and x (1 + 2a/5) on weekdays, so the weekly mean stays `rate`.

What real series do and a clean company does not, as options (all off by default, and then no
random number is drawn for them, so the default stream is unchanged):
- `burstiness` c: bursts. The rate of each hour is multiplied by a gamma-distributed factor with
  mean 1 and coefficient of variation c (capped at `_BURST_CAP`): hourly counts are
  overdispersed (negative binomial) and every series moves with the company's busy hours.
- `amount_sigma`: heavy tails. The lognormal spread of order values and expenses (0.5 by
  default; 1.2 puts one order in a thousand at ~40x the median).
For sparse counts, lower `rate` (at 0.05 events/s most business unit x region series are 0 in
many of their hours).

Labelled incidents (`streams.tools.incidents`) change the events they match by business unit and
region within their window of event time: revenue scales order amounts, cogs the cost of inventory
issued, opex expense amounts (each by `Incident.factor`, at least a cent); csat_ratio turns a
satisfied answer (CSAT 4-5, NPS 9-10) into an unhappy one (CSAT 1-2, NPS 0-4) with probability
1 - factor; on_time_delivery_ratio makes an order that would arrive in time arrive 0.5-2 lead
days after its promise instead, with probability 1 - factor at that late arrival, so that the
KPI, counted at delivery, dips within the incident's window and not an hour or two after it. A
silent_source drops the events of its type (fresh or follow-up, made as usual, then not sent);
bad messages and redeliveries still come. Incidents draw random numbers only for the events
they change, so a run equals the run without them up to the first event they change.

Pure: stdlib, orjson and `schemas` only; all randomness comes from one `random.Random(seed)`, so a
config always yields byte-identical messages. Memory is bounded by `_MAX_PENDING` follow-ups.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from itertools import accumulate, count
from statistics import fmean
from typing import Any

import orjson

from schemas import EVENT_TYPES, SCHEMA_VERSION
from streams.tools.incidents import KPI_TARGETS, Incident

__all__ = ["BAD_KINDS", "SimulatedMessage", "SimulationConfig", "daily_level", "simulate"]

BAD_KINDS: tuple[str, ...] = (
    "undecodable",
    "schema_violation",
    "unknown_type",
    "non_finite_number",
    "timestamp_out_of_range",
    "oversized",
    "duplicate",
)

_FRESH_WEIGHTS: dict[str, float] = {  # the first six keep about their old ratios and KPIs
    "order_placed": 0.597,
    "inventory_issued": 0.149,
    "expense_posted": 0.08,
    "feedback_submitted": 0.08,
    "order_cancelled": 0.05,
    "refund_issued": 0.039,
    "investment_made": 0.002,
    "benefit_realized": 0.003,
}
_FRESH_TYPES = tuple(_FRESH_WEIGHTS)
_FRESH_CUM = tuple(accumulate(_FRESH_WEIGHTS.values()))  # cumulative: choices() is hot
_FRESH_SHARE = 0.5  # of valid events once follow-ups run (measured); sizes budgets and lots
_SEASONAL_AMPLITUDE = 0.65  # rate x (1 - A) at 00:00 UTC, x (1 + A) at 12:00 UTC
_WEEKDAY_SHARE = 2 / 5  # of the weekly amplitude: 5 weekdays make up for 2 weekend days
_DAY_SECONDS = 86_400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE_MS, _HOUR_MS = 60_000, 3_600_000
_LEAD_DAY_MS = 30 * _MINUTE_MS  # a day of lead time (promise, payment terms) in simulated time

_BU_SHARE = {"retail": 0.55, "wholesale": 0.15, "marketplace": 0.30}
_BUSINESS_UNITS = tuple(_BU_SHARE)
_BU_CUM = tuple(accumulate(_BU_SHARE.values()))
_BU_ORDER_VALUE = {"retail": 60.0, "wholesale": 900.0, "marketplace": 35.0}  # mean, in currency
_BU_CHANNELS = {
    "retail": ("web", "store"),
    "wholesale": ("partner", "web"),
    "marketplace": ("web",),
}
_BU_QUANTITY = {"retail": (1, 4), "wholesale": (10, 200), "marketplace": (1, 2)}
_BU_ITEM_COST = {"retail": 1500, "wholesale": 800, "marketplace": 1200}  # cents, when bought
_BU_INVOICED = {"retail": 0.02, "wholesale": 0.85, "marketplace": 0.10}  # of shipped orders
_BU_REVENUE = {bu: _BU_SHARE[bu] * _BU_ORDER_VALUE[bu] for bu in _BU_SHARE}  # per order drawn
_BU_REVENUE_CUM = tuple(accumulate(_BU_REVENUE.values()))  # expenses follow it: every BU earns
_REGION_SHARE = {"emea": 0.45, "amer": 0.40, "apac": 0.15}
_REGIONS = tuple(_REGION_SHARE)
_REGION_CUM = tuple(accumulate(_REGION_SHARE.values()))
_UNITS = tuple((bu, region) for bu in _BUSINESS_UNITS for region in _REGIONS)
_EUR_PER_UNIT = {"emea": 0.8 + 0.2 * 1.17, "amer": 0.92, "apac": 0.92}  # of regional money
_EXPENSE_VALUE = {"marketing": 400.0, "logistics": 250.0, "it": 300.0, "payroll": 2500.0}
_EXPENSE_CATEGORIES = tuple(_EXPENSE_VALUE)
_CSAT_CUM = tuple(accumulate((3, 5, 12, 35, 45)))  # scores 1..5: happy customers answer more
_NPS_CUM = tuple(accumulate((1, 1, 1, 2, 2, 4, 5, 10, 20, 25, 29)))  # scores 0..10
_AMOUNT_SIGMA = 0.5  # lognormal noise on order values and expenses (`amount_sigma`)
_BURST_CAP = 4.0  # the largest hourly burst factor (`burstiness`)
_COGS_SHARE = 0.55
_CARRIERS = ("dhl", "ups", "fedex", "dpd")
_LATE_LEAD_DAYS = (0.5, 2.0)  # after the promise, when an on-time incident makes an order late
_LEAD_MU, _LEAD_SIGMA = -0.3, 0.25  # lead / promise is lognormal: P(<= 1) = Phi(1.2) ~ 0.885
_PARTIAL_PAYMENT = 0.15  # a payment covers only part of what is open; the rest follows
_CLAIMS = {  # id field: issued as, paid as, party field, due after, paid after (median; lead days)
    "invoice_id": ("invoice_issued", "payment_received", "customer_id", 14, 8.0),
    "bill_id": ("bill_received", "bill_paid", "supplier_id", 30, 20.0),
}
_LOT_SECONDS = 6 * 3600  # a restock covers ~6 h of a unit's cost of goods at the mean rate
_REORDER_SHARE = 0.5  # of a lot: ~3 h of cover, ~1.8 h at the peak; a restock takes <= 1 h
_FX_BASE = {"USD": 0.92, "GBP": 1.17}  # EUR per unit
_FX_EVERY_MS = 6 * _HOUR_MS
_FX_SIGMA, _FX_REVERSION = 0.003, 0.05  # steps of the log rate; stationary spread ~1%
_INITIATIVES = {  # where each belongs
    "init-1": ("retail", "emea"),
    "init-2": ("wholesale", "amer"),
    "init-3": ("marketplace", "apac"),
    "init-4": ("retail", "amer"),
    "init-5": ("wholesale", "emea"),
}
_INVESTMENT_VALUE, _BENEFIT_VALUE = 10_000.0, 8_000.0  # 1.5x as many benefits: ROI tends to +0.2
_BENEFIT_LAG_MS = 2 * _HOUR_MS  # from an initiative's first investment to its first benefit
_RECENT_ORDERS = 1_000  # pool bounds keep memory flat on long runs
_RECENT_VALID = 256
_MAX_PENDING = 200_000  # ~2x the most follow-ups open at 50/s; when full, orders do not ship

_NO_DIMENSIONS: dict[str, str] = {}
_Keyed = tuple[str, dict[str, Any]]  # (Kafka key, event)
_Step = Callable[[int], _Keyed | None]  # a follow-up, given the time it is emitted at


@dataclass(frozen=True)
class SimulatedMessage:
    """One Kafka message. `occurred_at` is epoch seconds of the intended event time."""

    key: bytes
    value: bytes
    bad_kind: str | None
    occurred_at: float


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate: `start` (timezone-aware) plus `duration` seconds of simulated time, at a
    daily mean of `rate` events per second (a weekly mean, with `weekly_amplitude`), with the
    changes `incidents` make (see the module's docstring).

    Raises ValueError naming the field when a value is out of range. Valid events stay well under
    1 KiB, so `max_event_bytes` below 1024 is refused: it would make valid events oversized too.
    """

    start: datetime
    seed: int = 42
    rate: float = 50.0
    duration: float = 60.0
    bad_ratio: float = 0.02
    max_event_bytes: int = 65_536
    incidents: tuple[Incident, ...] = ()
    weekly_amplitude: float = 0.0
    daily_amplitude: float = _SEASONAL_AMPLITUDE
    burstiness: float = 0.0
    amount_sigma: float = _AMOUNT_SIGMA

    def __post_init__(self) -> None:
        if not (math.isfinite(self.burstiness) and 0 <= self.burstiness <= 2):
            raise ValueError(f"burstiness must be within [0, 2], got {self.burstiness!r}")
        if not (math.isfinite(self.amount_sigma) and 0 < self.amount_sigma <= 3):
            raise ValueError(f"amount_sigma must be within (0, 3], got {self.amount_sigma!r}")
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware, got {self.start!r}")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be a finite number > 0, got {self.rate!r}")
        if not (math.isfinite(self.duration) and self.duration >= 0):
            raise ValueError(f"duration must be a finite number >= 0, got {self.duration!r}")
        if not 0 <= self.bad_ratio <= 1:
            raise ValueError(f"bad_ratio must be within [0, 1], got {self.bad_ratio!r}")
        if self.max_event_bytes < 1024:
            raise ValueError(f"max_event_bytes must be >= 1024, got {self.max_event_bytes!r}")
        if not (math.isfinite(self.daily_amplitude) and 0 <= self.daily_amplitude < 1):
            raise ValueError(f"daily_amplitude must be within [0, 1), got {self.daily_amplitude!r}")
        if not 0 <= self.weekly_amplitude < 1:
            raise ValueError(
                f"weekly_amplitude must be within [0, 1), got {self.weekly_amplitude!r}"
            )
        for index, incident in enumerate(self.incidents):
            if incident.kind == "silent_source" and incident.target not in EVENT_TYPES:
                raise ValueError(
                    f"incidents {index}: {incident.target!r} is not an event type; one of "
                    f"{', '.join(sorted(EVENT_TYPES))}"
                )


@dataclass(slots=True)
class _Order:
    order_id: str
    cents: int
    currency: str
    business_unit: str
    region: str
    channel: str
    customer_id: str
    promised_ms: int | None = None  # set when the order ships
    arrives_ms: int = 0  # when the shipment reaches the customer, if nothing holds it up
    dispatched: bool = False
    cancelled: bool = False

    def dimensions(self, *, channel: bool = True) -> dict[str, str]:
        return _dims(self.business_unit, self.region, self.channel if channel else None)


@dataclass(slots=True)
class _Claim:
    """An invoice to a customer or a bill from a supplier."""

    id_field: str  # a key of _CLAIMS
    claim_id: str
    party: str  # the customer or supplier
    dims: dict[str, str]
    cents: int  # still unpaid


def simulate(config: SimulationConfig) -> Iterator[SimulatedMessage]:
    """Yield the messages of `config` lazily (a day at 50/s is ~4.3M), in publish order.

    Event time never falls from message to message, except that a duplicate carries its
    original's. A duplicate drawn before any valid event exists is emitted as a valid event.
    """
    rng = random.Random(config.seed)
    company = _Company(rng, config)
    valid: deque[SimulatedMessage] = deque(maxlen=_RECENT_VALID)
    silent = tuple(i for i in config.incidents if i.kind == "silent_source")
    for ms in _arrival_millis(rng, config):
        if rng.random() < config.bad_ratio:
            kind = rng.choice(BAD_KINDS)
            if kind != "duplicate":
                yield _bad_message(rng, kind, ms, config.max_event_bytes)
                continue
            if valid:  # a redelivery of something already sent, as after a consumer rebalance
                yield replace(rng.choice(valid), bad_kind="duplicate")
                continue
        key, event = company.next_event(ms)
        if silent and _silenced(silent, event, ms):
            continue
        message = SimulatedMessage(key.encode(), orjson.dumps(event), None, ms / 1000)
        valid.append(message)
        yield message


def daily_level(t: float, amplitude: float = _SEASONAL_AMPLITUDE) -> float:
    """The daily shape at epoch seconds `t`: the rate there over the daily mean `rate`."""
    return 1 - amplitude * math.cos(2 * math.pi * (t % _DAY_SECONDS) / _DAY_SECONDS)


def _arrival_millis(rng: random.Random, config: SimulationConfig) -> Iterator[int]:
    """Event times in epoch milliseconds within [start, start + duration].

    Thinning (Lewis-Shedler): candidates at the peak rate, each kept with probability
    rate(t) / peak. Exact for a time-varying rate, where drawing each gap at the current rate
    would skew the night, when gaps are long. Millisecond times make the float `occurred_at` equal
    the RFC 3339 string the event carries. Without a weekly shape, the weekly factors are exactly
    1.0, so the draws and times are those of a daily shape alone.
    """
    start = config.start.timestamp()
    end = start + config.duration
    last_ms = math.floor(end * 1000)
    weekly = config.weekly_amplitude
    daily = config.daily_amplitude
    top = (1 + daily) * (1 + weekly * _WEEKDAY_SHARE)  # the most rate(t) / rate
    bursty = config.burstiness
    if bursty:
        top *= _BURST_CAP
    peak = config.rate * top
    t = start
    hour, burst = -1, 1.0
    while (t := t + rng.expovariate(peak)) < end:
        level = daily_level(t, daily)
        if bursty:
            if int(t // 3600) != hour:  # one gamma factor per hour, mean 1, CV `burstiness`
                hour = int(t // 3600)
                shape = 1 / bursty**2
                burst = min(_BURST_CAP, rng.gammavariate(shape, 1 / shape))
            level *= burst
        if weekly:
            weekend = (t // _DAY_SECONDS + 3) % 7 >= 5  # 1970-01-01 was a Thursday (Monday = 0)
            level *= 1 - weekly if weekend else 1 + weekly * _WEEKDAY_SHARE
        if rng.random() * top < level:
            yield min(math.ceil(t * 1000), last_ms)


def _factor(incidents: tuple[Incident, ...], dims: Mapping[str, str], ms: int) -> float:
    """The product of the factors of `incidents` matching `dims` at `ms` (epoch milliseconds)."""
    t, factor = ms / 1000, 1.0
    for incident in incidents:
        if incident.start <= t < incident.end and incident.matches(dims):
            factor *= incident.factor(t)
    return factor


def _silenced(silent: tuple[Incident, ...], event: dict[str, Any], ms: int) -> bool:
    t, kind = ms / 1000, event["type"]
    dims = event.get("dimensions", _NO_DIMENSIONS)
    return any(i.start <= t < i.end and i.target == kind and i.matches(dims) for i in silent)


class _Company:
    """The company between events. Event methods take the event time (epoch ms) and return
    (Kafka key, event); a follow-up returns None instead when it has lapsed."""

    def __init__(self, rng: random.Random, config: SimulationConfig) -> None:
        self.rng = rng
        self.sigma = config.amount_sigma
        self.orders: deque[_Order] = deque(maxlen=_RECENT_ORDERS)
        self.pending: list[tuple[int, int, _Step]] = []  # heap by due time, then by scheduling
        self.sequence = count()
        self.fx = dict(_FX_BASE)
        self.invested: dict[str, int] = {}  # initiative -> time of its first investment
        self.stock = dict.fromkeys(_UNITS, 0)  # cost in cents, currencies mixed as if at par
        self.restocking: set[tuple[str, str]] = set()
        # Per KPI, empty on the common path, where an event pays for one truth test.
        on = {t: tuple(i for i in config.incidents if i.target == t) for t in KPI_TARGETS}
        self.on_revenue, self.on_cogs, self.on_opex = on["revenue"], on["cogs"], on["opex"]
        self.on_csat, self.on_time = on["csat_ratio"], on["on_time_delivery_ratio"]
        fresh = config.rate * (1 - config.bad_ratio) * _FRESH_SHARE  # per second, daily mean
        cogs = fresh * _FRESH_WEIGHTS["inventory_issued"] * _COGS_SHARE * 100 * _LOT_SECONDS
        opex = fresh * _FRESH_WEIGHTS["expense_posted"] * fmean(_EXPENSE_VALUE.values()) * 100
        self.lot: dict[tuple[str, str], float] = {}  # cents
        self.opex: dict[tuple[str, str], float] = {}  # cents per second
        for bu, region in _UNITS:
            self.lot[bu, region] = max(1e5, cogs * _BU_REVENUE[bu] * _REGION_SHARE[region])
            share = _BU_REVENUE[bu] / _BU_REVENUE_CUM[-1] * _REGION_SHARE[region]
            self.opex[bu, region] = opex * share * _EUR_PER_UNIT[region]
        self.fresh: dict[str, Callable[[int, str], _Keyed]] = {
            "order_placed": self._order_placed,
            "order_cancelled": self._reversal,
            "refund_issued": self._reversal,
            "inventory_issued": self._inventory_issued,
            "expense_posted": self._expense_posted,
            "feedback_submitted": self._feedback_submitted,
            "investment_made": self._initiative,
            "benefit_realized": self._initiative,
        }
        start = math.floor(config.start.timestamp() * 1000)
        for currency in _FX_BASE:  # first, so that every amount after them has a rate
            self._schedule(start, partial(self._fx_rate, currency))
        for step in (self._budget_set, self._restock):
            for unit in _UNITS:
                self._schedule(start, partial(step, unit))

    def next_event(self, ms: int) -> _Keyed:
        """The follow-up due earliest at `ms`, if any is due, else a fresh event."""
        while self.pending and self.pending[0][0] <= ms:
            keyed = heapq.heappop(self.pending)[2](ms)
            if keyed is not None:
                return keyed
        kind = self.rng.choices(_FRESH_TYPES, cum_weights=_FRESH_CUM)[0]
        if kind in ("order_cancelled", "refund_issued") and not self.orders:
            kind = "order_placed"
        return self.fresh[kind](ms, kind)

    def _schedule(self, due_ms: int, step: _Step) -> None:
        heapq.heappush(self.pending, (due_ms, next(self.sequence), step))

    def _after(self, ms: int, lead_days: float) -> int:
        """A time about `lead_days` (the median, lognormal) after `ms`."""
        return ms + round(lead_days * _LEAD_DAY_MS * self.rng.lognormvariate(0.0, 0.4))

    def _order_placed(self, ms: int, kind: str) -> _Keyed:
        order = _new_order(self.rng, self.sigma)
        if self.on_revenue:
            order.cents = max(
                1, round(order.cents * _factor(self.on_revenue, order.dimensions(), ms))
            )
        self.orders.append(order)
        if order.channel != "store" and len(self.pending) < _MAX_PENDING:  # stores hand over
            promise = self.rng.randint(1, 3) * _LEAD_DAY_MS
            lead = promise * self.rng.lognormvariate(_LEAD_MU, _LEAD_SIGMA)
            order.promised_ms, order.arrives_ms = ms + promise, ms + round(lead)
            if self.on_time and order.arrives_ms <= order.promised_ms:
                self._maybe_late(order, order.promised_ms)
            dispatch = ms + max(_MINUTE_MS, round(lead * self.rng.uniform(0.1, 0.4)))
            self._schedule(dispatch, partial(self._dispatch, order, ms + promise))
        return order.order_id, _order_placed(self.rng, ms, order)

    def _maybe_late(self, order: _Order, promised_ms: int) -> None:
        """Make `order` arrive late with probability 1 - the on-time factor at its late arrival,
        drawing nothing unless an on-time incident matches and overlaps the possible arrivals."""
        low, high = ((promised_ms + days * _LEAD_DAY_MS) / 1000 for days in _LATE_LEAD_DAYS)
        dims = order.dimensions()
        if any(i.start <= high and low < i.end and i.matches(dims) for i in self.on_time):
            late = promised_ms + round(self.rng.uniform(*_LATE_LEAD_DAYS) * _LEAD_DAY_MS)
            if self.rng.random() < 1 - _factor(self.on_time, dims, late):
                order.arrives_ms = late

    def _reversal(self, ms: int, kind: str) -> _Keyed:
        index = self.rng.randrange(len(self.orders))
        order = self.orders[index]
        del self.orders[index]  # one reversal per order, so reversals never exceed its value
        cents = order.cents
        if order.dispatched:  # too late to cancel: a return
            kind = "refund_issued"
        if kind == "refund_issued":
            cents = max(1, round(cents * self.rng.uniform(0.1, 1.0)))  # partial, never above
        else:
            order.cancelled = True
        event = _envelope(self.rng, kind, ms, f"oms-{order.region}", order.dimensions())
        return order.order_id, {
            **event,
            **_money(cents, order.currency),
            "order_id": order.order_id,
        }

    def _dispatch(self, order: _Order, promised_ms: int, ms: int) -> _Keyed | None:
        if order.cancelled:
            return None
        order.dispatched = True
        shipment = f"shp-{_uuid(self.rng)}"
        event = _envelope(self.rng, "shipment_dispatched", ms, "wms", order.dimensions())
        event |= {"order_id": order.order_id, "shipment_id": shipment}
        event["carrier"] = self.rng.choice(_CARRIERS)
        deliver = partial(self._deliver, order, shipment, promised_ms)
        self._schedule(max(order.arrives_ms, ms + _MINUTE_MS), deliver)
        invoiced = self.rng.random() < _BU_INVOICED[order.business_unit]
        if invoiced and len(self.pending) < _MAX_PENDING:  # invoiced as it ships
            invoice_id, dims = f"inv-{_uuid(self.rng)}", order.dimensions()
            invoice = _Claim("invoice_id", invoice_id, order.customer_id, dims, order.cents)
            self._schedule(ms, partial(self._issue, invoice, order.currency))
        return order.order_id, event

    def _deliver(self, order: _Order, shipment: str, promised_ms: int, ms: int) -> _Keyed:
        event = _envelope(self.rng, "shipment_delivered", ms, "tms", order.dimensions())
        event |= {"order_id": order.order_id, "shipment_id": shipment}
        event["promised_delivery_at"] = _rfc3339(promised_ms)
        return order.order_id, event

    def _issue(self, claim: _Claim, currency: str, ms: int) -> _Keyed:
        """The invoice or bill `claim`; its payment follows after about the usual delay."""
        kind, _, party_field, due_days, paid_days = _CLAIMS[claim.id_field]
        event = _envelope(self.rng, kind, ms, "erp", claim.dims)
        event |= {claim.id_field: claim.claim_id, party_field: claim.party}
        event["due_at"] = _rfc3339(ms + due_days * _LEAD_DAY_MS)
        self._schedule(self._after(ms, paid_days), partial(self._settle, claim, currency))
        return claim.claim_id, {**event, **_money(claim.cents, currency)}

    def _settle(self, claim: _Claim, currency: str, ms: int) -> _Keyed:
        """A payment of all that is open of `claim`, or of part of it, the rest following."""
        _, kind, _, _, paid_days = _CLAIMS[claim.id_field]
        cents = claim.cents
        if cents > 1 and self.rng.random() < _PARTIAL_PAYMENT:
            cents = min(cents - 1, max(1, round(cents * self.rng.uniform(0.3, 0.9))))
            self._schedule(self._after(ms, paid_days / 2), partial(self._settle, claim, currency))
        claim.cents -= cents
        event = _envelope(self.rng, kind, ms, "erp", claim.dims)
        return claim.claim_id, {**event, claim.id_field: claim.claim_id, **_money(cents, currency)}

    def _inventory_issued(self, ms: int, kind: str) -> _Keyed:
        order = self.rng.choice(self.orders) if self.orders else _new_order(self.rng, self.sigma)
        link = {"order_id": order.order_id} if self.orders else {}  # unlinked when no orders
        low, high = _BU_QUANTITY[order.business_unit]
        cost = max(1, round(order.cents * _COGS_SHARE * self.rng.lognormvariate(0.0, 0.1)))
        event = _envelope(self.rng, kind, ms, "wms", order.dimensions(channel=False))
        if self.on_cogs:
            cost = max(1, round(cost * _factor(self.on_cogs, event["dimensions"], ms)))
        sku = f"sku-{order.business_unit}-{self.rng.randrange(1, 5000):04d}"
        fields = {"sku": sku, "quantity": self.rng.randint(low, high), **link}
        unit = (order.business_unit, order.region)
        self.stock[unit] -= cost
        if self.stock[unit] < self.lot[unit] * _REORDER_SHARE and unit not in self.restocking:
            self.restocking.add(unit)
            self._schedule(ms + self.rng.randint(10, 60) * _MINUTE_MS, partial(self._restock, unit))
        return event["event_id"], {**event, **fields, **_money(cost, order.currency)}

    def _restock(self, unit: tuple[str, str], ms: int) -> _Keyed:
        """A lot bought in the unit's home currency, billed by the supplier a little later."""
        (bu, region), cents = unit, round(self.lot[unit] * self.rng.uniform(0.9, 1.1))
        self.stock[unit] += cents
        self.restocking.discard(unit)
        currency = "EUR" if region == "emea" else "USD"
        event = _envelope(self.rng, "inventory_received", ms, "wms", _dims(bu, region))
        sku = f"sku-{bu}-{self.rng.randrange(1, 5000):04d}"
        event |= {"sku": sku, "quantity": max(1, cents // _BU_ITEM_COST[bu])}
        supplier = f"sup-{bu}-{self.rng.randint(1, 20):02d}"
        bill = _Claim("bill_id", f"bill-{_uuid(self.rng)}", supplier, _dims(bu, region), cents)
        self._schedule(self._after(ms, 0.2), partial(self._issue, bill, currency))
        return event["event_id"], {**event, **_money(cents, currency)}

    def _expense_posted(self, ms: int, kind: str) -> _Keyed:
        bu = self.rng.choices(_BUSINESS_UNITS, cum_weights=_BU_REVENUE_CUM)[0]
        region = self.rng.choices(_REGIONS, cum_weights=_REGION_CUM)[0]
        category = self.rng.choice(_EXPENSE_CATEGORIES)
        event = _envelope(self.rng, kind, ms, "erp", _dims(bu, region, cc=True))
        cents = _noisy_cents(self.rng, _EXPENSE_VALUE[category], self.sigma)
        if self.on_opex:
            cents = max(1, round(cents * _factor(self.on_opex, event["dimensions"], ms)))
        money = _money(cents, _currency(self.rng, region))
        return event["event_id"], {**event, **money, "category": category}

    def _budget_set(self, unit: tuple[str, str], ms: int) -> _Keyed:
        """The month's OpEx budget of the unit's cost center, in whole hundreds of euros 5-20%
        above the expected expense. Renews itself when the next month starts (UTC)."""
        when = _EPOCH + timedelta(milliseconds=ms)
        month = datetime(when.year, when.month, 1, tzinfo=UTC)
        next_month = datetime(when.year + when.month // 12, when.month % 12 + 1, 1, tzinfo=UTC)
        expected = self.opex[unit] * (next_month - month).total_seconds()
        hundreds = max(1, math.ceil(expected * self.rng.uniform(1.05, 1.2) / 10_000))
        event = _envelope(self.rng, "budget_set", ms, "erp", _dims(*unit, cc=True))
        event |= {**_money(hundreds * 10_000, "EUR"), "period": f"{month:%Y-%m}"}
        renew = round((next_month - _EPOCH).total_seconds() * 1000)
        self._schedule(renew, partial(self._budget_set, unit))
        return event["event_id"], event

    def _fx_rate(self, currency: str, ms: int) -> _Keyed:
        """The rate into EUR; then a mean-reverting step of its logarithm for the next one."""
        event = _envelope(self.rng, "fx_rate", ms, "treasury", None)
        event |= {"currency": currency, "quote_currency": "EUR"}
        event["rate"] = f"{self.fx[currency]:.6f}"
        base = _FX_BASE[currency]
        drift = math.log(self.fx[currency] / base) * (1 - _FX_REVERSION)
        self.fx[currency] = base * math.exp(drift + self.rng.gauss(0.0, _FX_SIGMA))
        self._schedule(ms + _FX_EVERY_MS, partial(self._fx_rate, currency))
        return event["event_id"], event

    def _initiative(self, ms: int, kind: str) -> _Keyed:
        """A benefit of an initiative invested in long enough ago, if any; else an investment."""
        ready = [i for i, first in self.invested.items() if ms - first >= _BENEFIT_LAG_MS]
        if kind == "benefit_realized" and ready:
            initiative, mean = self.rng.choice(ready), _BENEFIT_VALUE
        else:
            kind, mean = "investment_made", _INVESTMENT_VALUE
            initiative = self.rng.choice(tuple(_INITIATIVES))
            self.invested.setdefault(initiative, ms)
        bu, region = _INITIATIVES[initiative]
        event = _envelope(
            self.rng, kind, ms, "pmo", {**_dims(bu, region), "initiative_id": initiative}
        )
        money = _money(_noisy_cents(self.rng, mean, self.sigma), _currency(self.rng, region))
        return event["event_id"], {**event, **money}

    def _feedback_submitted(self, ms: int, kind: str) -> _Keyed:
        order = self.rng.choice(self.orders) if self.orders else _new_order(self.rng, self.sigma)
        link = {"order_id": order.order_id} if self.orders else {}
        event = _envelope(self.rng, kind, ms, "survey", order.dimensions())
        asked = self.rng.choice(("csat", "nps", "both"))
        if asked != "nps":
            event["csat_score"] = self.rng.choices(range(1, 6), cum_weights=_CSAT_CUM)[0]
        if asked != "csat":
            event["nps_score"] = self.rng.choices(range(11), cum_weights=_NPS_CUM)[0]
        if self.on_csat:
            self._maybe_unhappy(event, ms)
        return event["event_id"], {**event, **link}

    def _maybe_unhappy(self, event: dict[str, Any], ms: int) -> None:
        """Turn a satisfied answer unhappy with probability 1 - the CSAT factor: one draw per
        answer, for both scores, as it is one customer; none for an unhappy answer already."""
        csat, nps = event.get("csat_score", 0) >= 4, event.get("nps_score", 0) >= 9
        if not (csat or nps):
            return
        factor = _factor(self.on_csat, event["dimensions"], ms)
        if factor < 1 and self.rng.random() < 1 - factor:
            if csat:
                event["csat_score"] = self.rng.randint(1, 2)
            if nps:
                event["nps_score"] = self.rng.randint(0, 4)


def _bad_message(rng: random.Random, kind: str, ms: int, max_event_bytes: int) -> SimulatedMessage:
    """A message that the service must reject as `kind` (any but "duplicate")."""
    if kind == "undecodable":
        key = _uuid(rng).encode()
        return SimulatedMessage(key, b"\xff\xfe garbage " + rng.randbytes(16), kind, ms / 1000)
    order = _new_order(rng)  # never recorded: the service drops it, so nothing may refer to it
    event = _order_placed(rng, ms, order)
    if kind == "schema_violation":
        del event[rng.choice(("currency", "amount", "order_id", "occurred_at"))]
    elif kind == "unknown_type":
        event["type"] = "order_teleported"
    elif kind == "non_finite_number":
        event["amount"] = "NaN"
    elif kind == "timestamp_out_of_range":
        year_start = datetime(rng.choice((1970, 2999)), 1, 1, tzinfo=UTC).timestamp()
        event["occurred_at"] = _rfc3339(round(year_start * 1000) + rng.randrange(30_000_000_000))
    elif kind == "oversized":
        event["padding"] = "x" * max_event_bytes  # the field alone exceeds the limit
    else:
        raise ValueError(f"not a bad kind made here: {kind!r}")
    return SimulatedMessage(order.order_id.encode(), orjson.dumps(event), kind, ms / 1000)


def _new_order(rng: random.Random, sigma: float = _AMOUNT_SIGMA) -> _Order:
    bu, region = _pick_unit(rng)
    cents = _noisy_cents(rng, _BU_ORDER_VALUE[bu], sigma)
    channel = rng.choice(_BU_CHANNELS[bu])
    customer = f"cust-{rng.randrange(10**6):06d}"
    return _Order(f"ord-{_uuid(rng)}", cents, _currency(rng, region), bu, region, channel, customer)


def _order_placed(rng: random.Random, ms: int, order: _Order) -> dict[str, Any]:
    event = _envelope(rng, "order_placed", ms, f"oms-{order.region}", order.dimensions())
    event |= {"order_id": order.order_id, "customer_id": order.customer_id}
    event |= _money(order.cents, order.currency)
    if order.promised_ms is not None:
        event["promised_delivery_at"] = _rfc3339(order.promised_ms)
    return event


def _envelope(
    rng: random.Random, kind: str, ms: int, source: str, dims: dict[str, str] | None
) -> dict[str, Any]:
    """The envelope fields; `dims` None for the one type without dimensions (`fx_rate`)."""
    event: dict[str, Any] = {
        "event_id": _uuid(rng),
        "type": kind,
        "occurred_at": _rfc3339(ms),
        "source": source,
        "schema_version": SCHEMA_VERSION,
    }
    if dims is not None:
        event["dimensions"] = dims
    return event


@cache
def _dims(bu: str, region: str, channel: str | None = None, *, cc: bool = False) -> dict[str, str]:
    """Dimensions; one dict per combination, shared by the events, which only serialise it."""
    dims = {"business_unit": bu, "region": region}
    if channel is not None:
        dims["channel"] = channel
    if cc:  # one cost center per business unit and region
        dims["cost_center"] = f"cc-{bu}-{_REGIONS.index(region) + 1}"
    return dims


def _pick_unit(rng: random.Random) -> tuple[str, str]:
    bu = rng.choices(_BUSINESS_UNITS, cum_weights=_BU_CUM)[0]
    return bu, rng.choices(_REGIONS, cum_weights=_REGION_CUM)[0]


def _currency(rng: random.Random, region: str) -> str:
    if region == "emea":
        return "GBP" if rng.random() < 0.2 else "EUR"
    return "USD"


def _noisy_cents(rng: random.Random, mean: float, sigma: float = _AMOUNT_SIGMA) -> int:
    # mu = -sigma^2 / 2 keeps the lognormal's mean at 1, so `mean` stays the average value
    noise = rng.lognormvariate(-(sigma**2) / 2, sigma)
    return max(1, round(mean * 100 * noise))


def _money(cents: int, currency: str) -> dict[str, str]:
    """The contract's money fields; the amount a decimal string, two places: 12990 -> "129.90"."""
    return {"amount": f"{cents // 100}.{cents % 100:02d}", "currency": currency}


def _rfc3339(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 in UTC: 0 -> "1970-01-01T00:00:00.000+00:00"."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
