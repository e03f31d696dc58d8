"""A deterministic generator of a company's event stream, valid and bad, for demos and tests.

The model: one company with business units `retail`, `wholesale` and `marketplace`, regions
`emea`, `amer` and `apac`, and channels `web`, `store` and `partner`. Events arrive as a Poisson
process on a simulated clock whose rate follows the time of day in UTC (`rate` x ~0.35 at midnight,
x ~1.65 at noon, a cosine whose daily mean is exactly `rate`). Each message is bad with probability
`bad_ratio` (kind drawn uniformly from `BAD_KINDS`); otherwise it is a valid event drawn with the
weights in `_EVENT_WEIGHTS`. Order values are lognormal around a per-business-unit mean; EMEA pays
in EUR (~20% GBP), the rest in USD. Cancellations, refunds, cost of goods and feedback refer to a
recent order, so totals stay plausible: a cancelled or refunded order leaves the pool, which keeps
the money taken off any order at or below its value.

Pure: stdlib, orjson and `schemas` only; all randomness comes from one `random.Random(seed)`, so a
config always yields byte-identical messages.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

import orjson

from schemas import SCHEMA_VERSION

__all__ = ["BAD_KINDS", "SimulatedMessage", "SimulationConfig", "simulate"]

BAD_KINDS: tuple[str, ...] = (
    "undecodable",
    "schema_violation",
    "unknown_type",
    "non_finite_number",
    "timestamp_out_of_range",
    "oversized",
    "duplicate",
)

_EVENT_WEIGHTS: dict[str, float] = {
    "order_placed": 0.60,
    "inventory_issued": 0.15,
    "expense_posted": 0.08,
    "feedback_submitted": 0.08,
    "order_cancelled": 0.05,
    "refund_issued": 0.04,
}
_EVENT_TYPES = tuple(_EVENT_WEIGHTS)
_EVENT_CUM = tuple(accumulate(_EVENT_WEIGHTS.values()))  # cumulative: choices() is hot
_SEASONAL_AMPLITUDE = 0.65  # rate x (1 - A) at 00:00 UTC, x (1 + A) at 12:00 UTC
_DAY_SECONDS = 86_400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_BUSINESS_UNITS = ("retail", "wholesale", "marketplace")
_BU_CUM = tuple(accumulate((0.55, 0.15, 0.30)))
_BU_ORDER_VALUE = {"retail": 60.0, "wholesale": 900.0, "marketplace": 35.0}  # mean, in currency
_BU_CHANNELS = {
    "retail": ("web", "store"),
    "wholesale": ("partner", "web"),
    "marketplace": ("web",),
}
_BU_QUANTITY = {"retail": (1, 4), "wholesale": (10, 200), "marketplace": (1, 2)}
_REGIONS = ("emea", "amer", "apac")
_REGION_CUM = tuple(accumulate((0.45, 0.40, 0.15)))
_EXPENSE_VALUE = {"marketing": 400.0, "logistics": 250.0, "it": 300.0, "payroll": 2500.0}
_EXPENSE_CATEGORIES = tuple(_EXPENSE_VALUE)
_CSAT_CUM = tuple(accumulate((3, 5, 12, 35, 45)))  # scores 1..5: happy customers answer more
_NPS_CUM = tuple(accumulate((1, 1, 1, 2, 2, 4, 5, 10, 20, 25, 29)))  # scores 0..10
_AMOUNT_SIGMA = 0.5  # lognormal noise on order values and expenses
_COGS_SHARE = 0.55
_RECENT_ORDERS = 1_000  # pool bounds keep memory flat on long runs
_RECENT_VALID = 256


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
    daily mean of `rate` events per second.

    Raises ValueError naming the field when a value is out of range. Valid events stay well under
    1 KiB, so `max_event_bytes` below 1024 is refused: it would make valid events oversized too.
    """

    start: datetime
    seed: int = 42
    rate: float = 50.0
    duration: float = 60.0
    bad_ratio: float = 0.02
    max_event_bytes: int = 65_536

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class _Order:
    order_id: str
    cents: int
    currency: str
    business_unit: str
    region: str
    channel: str

    def dimensions(self, *, channel: bool = True) -> dict[str, str]:
        dims = {"business_unit": self.business_unit, "region": self.region}
        return {**dims, "channel": self.channel} if channel else dims


def simulate(config: SimulationConfig) -> Iterator[SimulatedMessage]:
    """Yield the messages of `config` lazily (a day at 50/s is ~4.3M), in publish order.

    Event time never falls from message to message, except that a duplicate carries its
    original's. A duplicate drawn before any valid event exists is emitted as a valid event.
    """
    rng = random.Random(config.seed)
    orders: deque[_Order] = deque(maxlen=_RECENT_ORDERS)
    valid: deque[SimulatedMessage] = deque(maxlen=_RECENT_VALID)
    for ms in _arrival_millis(rng, config):
        if rng.random() < config.bad_ratio:
            kind = rng.choice(BAD_KINDS)
            if kind != "duplicate":
                yield _bad_message(rng, kind, ms, config.max_event_bytes)
                continue
            if valid:  # a redelivery of something already sent, as after a consumer rebalance
                yield replace(rng.choice(valid), bad_kind="duplicate")
                continue
        key, event = _valid_event(rng, ms, orders)
        message = SimulatedMessage(key.encode(), orjson.dumps(event), None, ms / 1000)
        valid.append(message)
        yield message


def _arrival_millis(rng: random.Random, config: SimulationConfig) -> Iterator[int]:
    """Event times in epoch milliseconds within [start, start + duration].

    Thinning (Lewis-Shedler): candidates at the peak rate, each kept with probability
    rate(t) / peak. Exact for a time-varying rate, where drawing each gap at the current rate
    would skew the night, when gaps are long. Millisecond times make the float `occurred_at` equal
    the RFC 3339 string the event carries.
    """
    start = config.start.timestamp()
    end = start + config.duration
    last_ms = math.floor(end * 1000)
    peak = config.rate * (1 + _SEASONAL_AMPLITUDE)
    t = start
    while (t := t + rng.expovariate(peak)) < end:
        phase = 2 * math.pi * (t % _DAY_SECONDS) / _DAY_SECONDS
        if rng.random() * (1 + _SEASONAL_AMPLITUDE) < 1 - _SEASONAL_AMPLITUDE * math.cos(phase):
            yield min(math.ceil(t * 1000), last_ms)


def _valid_event(rng: random.Random, ms: int, orders: deque[_Order]) -> tuple[str, dict[str, Any]]:
    """Draw one valid event at `ms`; return (Kafka key, event).

    Mutates `orders`: a placed order joins the pool, a cancelled or refunded one leaves it.
    """
    kind = rng.choices(_EVENT_TYPES, cum_weights=_EVENT_CUM)[0]
    if kind in ("order_cancelled", "refund_issued") and not orders:
        kind = "order_placed"
    match kind:
        case "order_placed":
            order = _new_order(rng)
            orders.append(order)
            return order.order_id, _order_placed(rng, ms, order)
        case "order_cancelled" | "refund_issued":
            index = rng.randrange(len(orders))
            order = orders[index]
            del orders[index]  # one reversal per order, so reversals never exceed its value
            cents = order.cents
            if kind == "refund_issued":
                cents = max(1, round(cents * rng.uniform(0.1, 1.0)))  # partial, never above
            event = _envelope(rng, kind, ms, f"oms-{order.region}", order.dimensions())
            money = _money(cents, order.currency)
            return order.order_id, {**event, **money, "order_id": order.order_id}
        case "inventory_issued":
            order = rng.choice(orders) if orders else _new_order(rng)  # unlinked when no orders
            link = {"order_id": order.order_id} if orders else {}
            low, high = _BU_QUANTITY[order.business_unit]
            cost = max(1, round(order.cents * _COGS_SHARE * rng.lognormvariate(0.0, 0.1)))
            event = _envelope(rng, kind, ms, "wms", order.dimensions(channel=False))
            sku = f"sku-{order.business_unit}-{rng.randrange(1, 5000):04d}"
            fields = {"sku": sku, "quantity": rng.randint(low, high), **link}
            return event["event_id"], {**event, **fields, **_money(cost, order.currency)}
        case "expense_posted":
            bu, region = _pick_unit(rng)
            category = rng.choice(_EXPENSE_CATEGORIES)
            cost_center = f"cc-{bu}-{rng.randint(1, 3)}"
            dims = {"business_unit": bu, "region": region, "cost_center": cost_center}
            event = _envelope(rng, kind, ms, "erp", dims)
            cents = _noisy_cents(rng, _EXPENSE_VALUE[category])
            money = _money(cents, _currency(rng, region))
            return event["event_id"], {**event, **money, "category": category}
        case _:  # feedback_submitted
            order = rng.choice(orders) if orders else _new_order(rng)
            link = {"order_id": order.order_id} if orders else {}
            event = _envelope(rng, kind, ms, "survey", order.dimensions())
            asked = rng.choice(("csat", "nps", "both"))
            if asked != "nps":
                event["csat_score"] = rng.choices(range(1, 6), cum_weights=_CSAT_CUM)[0]
            if asked != "csat":
                event["nps_score"] = rng.choices(range(11), cum_weights=_NPS_CUM)[0]
            return event["event_id"], {**event, **link}


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


def _new_order(rng: random.Random) -> _Order:
    bu, region = _pick_unit(rng)
    cents = _noisy_cents(rng, _BU_ORDER_VALUE[bu])
    channel = rng.choice(_BU_CHANNELS[bu])
    return _Order(f"ord-{_uuid(rng)}", cents, _currency(rng, region), bu, region, channel)


def _order_placed(rng: random.Random, ms: int, order: _Order) -> dict[str, Any]:
    event = _envelope(rng, "order_placed", ms, f"oms-{order.region}", order.dimensions())
    event |= {"order_id": order.order_id, "customer_id": f"cust-{rng.randrange(10**6):06d}"}
    event |= _money(order.cents, order.currency)
    if order.channel != "store":  # shipped orders carry a promise, store sales are handed over
        event["promised_delivery_at"] = _rfc3339(ms + rng.randint(1, 5) * 86_400_000)
    return event


def _envelope(
    rng: random.Random, kind: str, ms: int, source: str, dims: dict[str, str]
) -> dict[str, Any]:
    return {
        "event_id": _uuid(rng),
        "type": kind,
        "occurred_at": _rfc3339(ms),
        "source": source,
        "schema_version": SCHEMA_VERSION,
        "dimensions": dims,
    }


def _pick_unit(rng: random.Random) -> tuple[str, str]:
    bu = rng.choices(_BUSINESS_UNITS, cum_weights=_BU_CUM)[0]
    return bu, rng.choices(_REGIONS, cum_weights=_REGION_CUM)[0]


def _currency(rng: random.Random, region: str) -> str:
    if region == "emea":
        return "GBP" if rng.random() < 0.2 else "EUR"
    return "USD"


def _noisy_cents(rng: random.Random, mean: float) -> int:
    # mu = -sigma^2 / 2 keeps the lognormal's mean at 1, so `mean` stays the average value
    noise = rng.lognormvariate(-(_AMOUNT_SIGMA**2) / 2, _AMOUNT_SIGMA)
    return max(1, round(mean * 100 * noise))


def _money(cents: int, currency: str) -> dict[str, str]:
    """The contract's money fields; the amount a decimal string, two places: 12990 -> "129.90"."""
    return {"amount": f"{cents // 100}.{cents % 100:02d}", "currency": currency}


def _rfc3339(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 in UTC: 0 -> "1970-01-01T00:00:00.000+00:00"."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
