"""The simulator: deterministic, on contract, with the bad messages and daily shape it promises."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pydantic
import pytest

from schemas import EVENT_TYPES, event_adapter
from streams.tools.simulator import BAD_KINDS, SimulatedMessage, SimulationConfig, simulate

MIDNIGHT = datetime(2024, 3, 1, tzinfo=UTC)
START = MIDNIGHT + timedelta(hours=12)  # the busy hours, where a short run holds many events
DAY_START = MIDNIGHT - timedelta(hours=12)  # a day across a month's end (Feb 29 -> Mar 1)
ORDER_KEYED = {
    "order_placed",
    "order_cancelled",
    "refund_issued",
    "shipment_dispatched",
    "shipment_delivered",
}
KEY_FIELD = {
    **dict.fromkeys(ORDER_KEYED, "order_id"),
    "invoice_issued": "invoice_id",
    "payment_received": "invoice_id",
    "bill_received": "bill_id",
    "bill_paid": "bill_id",
}
# The weights of a fresh event, drawn when no follow-up is due. Paired: a cancellation after
# dispatch turns into a refund, a benefit before any initiative pays back into an investment.
FRESH_WEIGHTS = {
    ("order_placed",): 0.597,
    ("inventory_issued",): 0.149,
    ("expense_posted",): 0.08,
    ("feedback_submitted",): 0.08,
    ("order_cancelled", "refund_issued"): 0.089,
    ("investment_made", "benefit_realized"): 0.005,
}
FX_BASE = {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}
EUR_AT_BASE = {"EUR": Decimal(1), **FX_BASE}


@pytest.fixture(scope="module")
def make_config() -> Callable[..., SimulationConfig]:
    def make(**overrides: Any) -> SimulationConfig:
        return SimulationConfig(**{"start": START, **overrides})

    return make


@pytest.fixture(scope="module")
def stream(make_config: Callable[..., SimulationConfig]) -> list[SimulatedMessage]:
    """~20k messages (50/s x ~1.65 at noon x 240 s) at the default 2% bad."""
    return list(simulate(make_config(rate=50.0, duration=240.0)))


@pytest.fixture(scope="module")
def day(make_config: Callable[..., SimulationConfig]) -> list[SimulatedMessage]:
    """A day from noon at 0.5/s (~43k messages): long enough for every follow-up to come due."""
    return list(simulate(make_config(start=DAY_START, rate=0.5, duration=86_400.0)))


@pytest.fixture(scope="module")
def day_events(day: list[SimulatedMessage]) -> list[dict[str, Any]]:
    """The day's valid events, decoded, in publish order."""
    return [orjson.loads(m.value) for m in day if m.bad_kind is None]


@pytest.fixture(scope="module")
def bad_heavy(make_config: Callable[..., SimulationConfig]) -> list[SimulatedMessage]:
    """Half bad, so that each kind shows up a few hundred times; a small size limit."""
    return list(simulate(make_config(seed=7, bad_ratio=0.5, max_event_bytes=4096)))


def _within_sigmas(count: int, n: int, p: float, sigmas: float) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_same_seed_gives_identical_bytes(make_config: Callable[..., SimulationConfig]) -> None:
    def run() -> list[SimulatedMessage]:  # two hours: long enough for payments to come due
        return list(simulate(make_config(seed=3, bad_ratio=0.2, rate=2.0, duration=7200.0)))

    first = run()
    assert first == run()
    assert len(first) > 10_000
    kinds = {orjson.loads(m.value)["type"] for m in first if m.bad_kind is None}
    assert {"shipment_delivered", "payment_received", "bill_received"} <= kinds  # follow-ups too


def test_different_seed_gives_different_messages(
    make_config: Callable[..., SimulationConfig],
) -> None:
    assert list(simulate(make_config(seed=1))) != list(simulate(make_config(seed=2)))


@pytest.mark.parametrize(
    ("messages", "start", "seconds", "at_least"),
    [("stream", START, 240, 19_000), ("day", DAY_START, 86_400, 40_000)],
    ids=["stream", "day"],
)
def test_valid_messages_follow_the_contract(
    request: pytest.FixtureRequest, messages: str, start: datetime, seconds: int, at_least: int
) -> None:
    end, previous = start + timedelta(seconds=seconds), 0.0
    valid = [m for m in request.getfixturevalue(messages) if m.bad_kind is None]
    assert len(valid) > at_least
    for message in valid:
        raw = orjson.loads(message.value)
        event = event_adapter.validate_python(raw)
        assert start <= event.occurred_at <= end
        assert event.occurred_at.timestamp() == message.occurred_at >= previous
        previous = message.occurred_at
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", raw["occurred_at"])
        assert message.key == raw[KEY_FIELD.get(event.type, "event_id")].encode()
        assert len(message.value) < 1024


def test_every_event_type_appears_in_a_day(day_events: list[dict[str, Any]]) -> None:
    assert {raw["type"] for raw in day_events} == EVENT_TYPES


def test_event_ids_are_unique(day_events: list[dict[str, Any]]) -> None:
    ids = [raw["event_id"] for raw in day_events]
    assert len(ids) == len(set(ids))


def test_money_dimensions_and_sources(day_events: list[dict[str, Any]]) -> None:
    emea_currencies: Counter[str] = Counter()
    cost_center_numbers = {"emea": 1, "amer": 2, "apac": 3}
    for raw in day_events:
        kind = raw["type"]
        if kind == "fx_rate":
            assert "dimensions" not in raw
            continue
        dims = raw["dimensions"]
        assert dims["business_unit"] in {"retail", "wholesale", "marketplace"}
        assert dims["region"] in {"emea", "amer", "apac"}
        if kind in {"order_placed", "order_cancelled", "refund_issued"}:
            assert dims["channel"] in {"web", "store", "partner"}
            assert raw["source"] == f"oms-{dims['region']}"
        if kind in {"expense_posted", "budget_set"}:  # one cost center per unit and region
            number = cost_center_numbers[dims["region"]]
            assert dims["cost_center"] == f"cc-{dims['business_unit']}-{number}"
        if kind == "expense_posted":
            assert raw["category"] in {"marketing", "logistics", "it", "payroll"}
        if kind in {"investment_made", "benefit_realized"}:
            assert re.fullmatch(r"init-[1-5]", dims["initiative_id"])
        if "amount" in raw:
            assert re.fullmatch(r"\d+\.\d{2}", raw["amount"]), raw["amount"]
            if kind == "budget_set":
                assert raw["currency"] == "EUR"
            elif dims["region"] == "emea":
                emea_currencies[raw["currency"]] += 1
            else:
                assert raw["currency"] == "USD"
    assert set(emea_currencies) == {"EUR", "GBP"}
    assert 0.15 < emea_currencies["GBP"] / emea_currencies.total() < 0.25


def test_order_value_differs_by_business_unit(stream: list[SimulatedMessage]) -> None:
    totals: dict[str, list[Decimal]] = {"retail": [], "wholesale": [], "marketplace": []}
    for message in stream:
        raw = orjson.loads(message.value) if message.bad_kind is None else {}
        if raw.get("type") == "order_placed":
            totals[raw["dimensions"]["business_unit"]].append(Decimal(raw["amount"]))
    means = {bu: sum(values) / len(values) for bu, values in totals.items()}
    assert means["marketplace"] < means["retail"] < means["wholesale"]
    assert 700 < means["wholesale"] < 1100


def test_valid_event_mix_follows_the_weights(day_events: list[dict[str, Any]]) -> None:
    kinds = Counter(raw["type"] for raw in day_events)
    fresh = sum(kinds[kind] for group in FRESH_WEIGHTS for kind in group)
    for group, weight in FRESH_WEIGHTS.items():
        count = sum(kinds[kind] for kind in group)
        assert _within_sigmas(count, fresh, weight, 5), (group, count / fresh)
    # Follow-ups per fresh event: 0.597 orders x (0.725 not sold in a store x 2 shipment events
    # + ~0.16 invoiced x ~2 for the invoice and its payments) ~ 1.06. So fresh events are about
    # half of the valid ones and orders ~0.3: the most common type, if no longer half.
    assert kinds.most_common(1)[0][0] == "order_placed"
    assert 0.27 < kinds["order_placed"] / kinds.total() < 0.33
    assert 0.45 < fresh / kinds.total() < 0.55


def test_bad_share_matches_bad_ratio(stream: list[SimulatedMessage]) -> None:
    n = len(stream)
    bad = Counter(m.bad_kind for m in stream if m.bad_kind is not None)
    assert _within_sigmas(bad.total(), n, 0.02, 4), bad.total() / n
    for kind in BAD_KINDS:  # uniform over kinds
        assert _within_sigmas(bad[kind], bad.total(), 1 / len(BAD_KINDS), 4), bad


def test_bad_ratio_bounds(make_config: Callable[..., SimulationConfig]) -> None:
    assert all(m.bad_kind is None for m in simulate(make_config(bad_ratio=0.0)))
    # a duplicate needs an earlier valid event: until there is one, it is replaced by one
    all_bad = Counter(m.bad_kind for m in simulate(make_config(bad_ratio=1.0)))
    assert all_bad[None] == 1
    assert list(simulate(make_config(duration=0.0))) == []


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_bad_kind_fails_as_intended(kind: str, bad_heavy: list[SimulatedMessage]) -> None:
    earlier_valid: dict[tuple[bytes, bytes], float] = {}
    start, end = START.timestamp(), START.timestamp() + 60
    checked = 0
    for message in bad_heavy:
        if message.bad_kind is None:
            earlier_valid[(message.key, message.value)] = message.occurred_at
        if message.bad_kind != kind:
            continue
        checked += 1
        assert start <= message.occurred_at <= end
        if kind == "undecodable":
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(message.value)
        elif kind in {"schema_violation", "unknown_type", "non_finite_number"}:
            with pytest.raises(pydantic.ValidationError):
                event_adapter.validate_python(orjson.loads(message.value))
        elif kind == "timestamp_out_of_range":
            event = event_adapter.validate_python(orjson.loads(message.value))
            assert event.occurred_at.year in {1970, 2999}
        elif kind == "oversized":
            assert len(message.value) > 4096
            assert isinstance(orjson.loads(message.value), dict)
        else:
            assert earlier_valid[(message.key, message.value)] == message.occurred_at
    assert checked > 100


def test_reversals_refer_to_an_earlier_order(stream: list[SimulatedMessage]) -> None:
    placed: dict[str, tuple[Decimal, str, dict[str, str]]] = {}
    reversed_ids: list[str] = []
    for message in stream:
        if message.bad_kind is not None:
            continue
        raw = orjson.loads(message.value)
        if raw["type"] == "order_placed":
            placed[raw["order_id"]] = (Decimal(raw["amount"]), raw["currency"], raw["dimensions"])
        elif raw["type"] in {"order_cancelled", "refund_issued"}:
            amount, currency, dims = placed[raw["order_id"]]
            assert Decimal(raw["amount"]) <= amount
            assert (raw["currency"], raw["dimensions"]) == (currency, dims)
            reversed_ids.append(raw["order_id"])
        elif "order_id" in raw:  # cost of goods and feedback link to a real, earlier order
            assert raw["order_id"] in placed
    assert len(reversed_ids) > 1000
    assert len(reversed_ids) == len(set(reversed_ids))  # at most one reversal per order


def test_cancelled_orders_do_not_ship(day_events: list[dict[str, Any]]) -> None:
    dispatched: set[str] = set()
    cancelled: set[str] = set()
    for raw in day_events:
        if raw["type"] == "shipment_dispatched":
            assert raw["order_id"] not in cancelled
            dispatched.add(raw["order_id"])
        elif raw["type"] == "order_cancelled":
            assert raw["order_id"] not in dispatched  # once shipped, only a refund
            cancelled.add(raw["order_id"])
    assert len(cancelled) > 200


def test_daily_rate_and_shape(day: list[SimulatedMessage]) -> None:
    rate = 0.5  # follow-ups take arrival slots: all types together keep the rate
    hours = Counter(int(m.occurred_at % 86_400 // 3600) for m in day)  # hour of the day, UTC
    assert abs(hours.total() / 86_400 - rate) <= 0.1 * rate
    assert set(hours) <= set(range(24))
    assert hours[12] > 2 * hours[0]  # mid-day vs midnight UTC
    assert hours[12] > 2 * hours[23]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start", datetime(2024, 3, 1)),
        ("rate", 0.0),
        ("rate", -1.0),
        ("rate", math.nan),
        ("rate", math.inf),
        ("duration", -1.0),
        ("duration", math.inf),
        ("bad_ratio", -0.1),
        ("bad_ratio", 1.5),
        ("max_event_bytes", 100),
        ("daily_amplitude", -0.1),
        ("daily_amplitude", 1.0),
    ],
)
def test_config_errors_name_the_field(
    make_config: Callable[..., SimulationConfig], field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        make_config(**{field: value})


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_shipments_follow_their_order(day_events: list[dict[str, Any]]) -> None:
    end = DAY_START + timedelta(days=1)
    placed: dict[str, dict[str, Any]] = {}
    dispatched: dict[str, dict[str, Any]] = {}
    delivered: dict[str, dict[str, Any]] = {}
    for raw in day_events:
        kind, order_id = raw["type"], raw.get("order_id", "")
        if kind == "order_placed":
            placed[order_id] = raw
        elif kind == "shipment_dispatched":
            order = placed[order_id]
            assert order_id not in dispatched
            assert _utc(raw["occurred_at"]) > _utc(order["occurred_at"])
            assert raw["dimensions"] == order["dimensions"]
            dispatched[order_id] = raw
        elif kind == "shipment_delivered":
            order, dispatch = placed[order_id], dispatched[order_id]
            assert order_id not in delivered
            assert _utc(raw["occurred_at"]) > _utc(dispatch["occurred_at"])
            assert raw["shipment_id"] == dispatch["shipment_id"]
            assert raw["dimensions"] == order["dimensions"]
            assert raw["promised_delivery_at"] == order["promised_delivery_at"]
            delivered[order_id] = raw
    on_time = [
        _utc(r["occurred_at"]) <= _utc(r["promised_delivery_at"]) for r in delivered.values()
    ]
    assert len(on_time) > 5000
    assert 0.80 <= sum(on_time) / len(on_time) <= 0.95
    # Store sales are handed over; every other order promises delivery within 1-3 h (a day of
    # lead time is half an hour here) and, unless cancelled, arrives within ~4 h.
    cancelled = {r["order_id"] for r in day_events if r["type"] == "order_cancelled"}
    for order_id, order in placed.items():
        if order["dimensions"]["channel"] == "store":
            assert "promised_delivery_at" not in order
            assert order_id not in dispatched
            continue
        promise = _utc(order["promised_delivery_at"]) - _utc(order["occurred_at"])
        assert promise in {timedelta(minutes=m) for m in (30, 60, 90)}
        if _utc(order["occurred_at"]) < end - timedelta(hours=4) and order_id not in cancelled:
            assert order_id in delivered


@pytest.mark.parametrize(
    ("issued", "paid", "id_field"),
    [
        ("invoice_issued", "payment_received", "invoice_id"),
        ("bill_received", "bill_paid", "bill_id"),
    ],
)
def test_payments_settle_an_earlier_claim(
    day_events: list[dict[str, Any]], issued: str, paid: str, id_field: str
) -> None:
    claims: dict[str, dict[str, Any]] = {}
    open_amount: dict[str, Decimal] = {}
    payments = 0
    for raw in day_events:
        if raw["type"] == issued:
            assert raw[id_field] not in claims
            assert _utc(raw["due_at"]) > _utc(raw["occurred_at"])
            claims[raw[id_field]] = raw
            open_amount[raw[id_field]] = Decimal(raw["amount"])
        elif raw["type"] == paid:
            claim = claims[raw[id_field]]  # issued earlier
            assert (raw["currency"], raw["dimensions"]) == (claim["currency"], claim["dimensions"])
            assert Decimal(raw["amount"]) <= open_amount[raw[id_field]]  # never more than is open
            open_amount[raw[id_field]] -= Decimal(raw["amount"])
            payments += 1
    settled = sum(1 for amount in open_amount.values() if amount == 0)
    assert payments >= 20
    assert 0.1 < settled / len(claims) < 1  # some paid within the day, some still open
    if issued == "invoice_issued":  # wholesale, mostly
        units = Counter(claim["dimensions"]["business_unit"] for claim in claims.values())
        assert units.most_common(1)[0][0] == "wholesale"
        assert len(claims) > 1000


def test_budgets_each_month_and_cost_center(day_events: list[dict[str, Any]]) -> None:
    budgets: dict[str, dict[str, Decimal]] = {}
    for raw in day_events:
        if raw["type"] == "budget_set":
            when = _utc(raw["occurred_at"])
            assert raw["period"] == f"{when.year:04d}-{when.month:02d}"
            assert raw["currency"] == "EUR"
            set_at = DAY_START if raw["period"] == "2024-02" else MIDNIGHT  # start, new month
            assert set_at <= when < set_at + timedelta(minutes=5)
            by_center = budgets.setdefault(raw["period"], {})
            assert raw["dimensions"]["cost_center"] not in by_center
            by_center[raw["dimensions"]["cost_center"]] = Decimal(raw["amount"])
    assert set(budgets) == {"2024-02", "2024-03"}
    assert all(len(by_center) == 9 for by_center in budgets.values())
    # Plausibly above the month's expense: the day's expense (at base rates), times 31 days.
    day_expense = sum(
        Decimal(raw["amount"]) * EUR_AT_BASE[raw["currency"]]
        for raw in day_events
        if raw["type"] == "expense_posted"
    )
    assert 0.75 < day_expense * 31 / sum(budgets["2024-03"].values()) < 1.0


def test_fx_rates_come_first_and_every_six_hours(day_events: list[dict[str, Any]]) -> None:
    assert [raw["type"] for raw in day_events[:2]] == ["fx_rate", "fx_rate"]
    end = DAY_START + timedelta(days=1)
    for currency, base in FX_BASE.items():
        rates = [r for r in day_events if r["type"] == "fx_rate" and r["currency"] == currency]
        times = [DAY_START, *(_utc(r["occurred_at"]) for r in rates), end]
        assert max(b - a for a, b in itertools.pairwise(times)) <= timedelta(hours=6, minutes=5)
        for raw in rates:
            assert raw["quote_currency"] == "EUR"
            assert re.fullmatch(r"\d+\.\d{6}", raw["rate"])
            assert abs(Decimal(raw["rate"]) / base - 1) < Decimal("0.1")


def test_inventory_value_stays_positive_and_stable(day_events: list[dict[str, Any]]) -> None:
    value: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    opening: dict[tuple[str, str], Decimal] = {}
    for raw in day_events:
        if raw["type"] not in {"inventory_received", "inventory_issued"}:
            continue
        unit = (raw["dimensions"]["business_unit"], raw["dimensions"]["region"])
        amount = Decimal(raw["amount"]) * EUR_AT_BASE[raw["currency"]]
        if raw["type"] == "inventory_received":
            opening.setdefault(unit, amount)
            value[unit] += amount
        else:
            value[unit] -= amount
            assert value[unit] > 0, unit
    assert len(opening) == 9
    for unit, amount in value.items():
        assert 0 < amount < 2 * opening[unit], unit


def test_benefits_follow_investments(day_events: list[dict[str, Any]]) -> None:
    invested: dict[str, datetime] = {}
    benefits = 0
    for raw in day_events:
        initiative = raw.get("dimensions", {}).get("initiative_id")
        if raw["type"] == "investment_made":
            invested.setdefault(initiative, _utc(raw["occurred_at"]))
        elif raw["type"] == "benefit_realized":
            assert _utc(raw["occurred_at"]) - invested[initiative] >= timedelta(hours=2)
            benefits += 1
    assert len(invested) == 5
    assert benefits > 20


def _hourly_dispersion(burstiness: float) -> float:
    """Pearson dispersion of the hourly message counts around the documented daily rate
    `rate x (1 - 0.65 cos(2 pi t / day))` (evaluated at mid-hour): about 1 for a Poisson
    process, 1 + c^2 mu for a gamma burst factor of CV c over a mean mu."""
    rate = 0.2
    start = datetime(2026, 1, 5, tzinfo=UTC)
    config = SimulationConfig(
        start=start,
        seed=3,
        rate=rate,
        duration=2 * 86_400.0,
        bad_ratio=0.0,
        burstiness=burstiness,
    )
    counts = Counter(int((m.occurred_at - start.timestamp()) // 3600) for m in simulate(config))
    terms = []
    for hour in range(48):
        mean = 3600 * rate * (1 - 0.65 * math.cos(2 * math.pi * ((hour + 0.5) % 24) / 24))
        terms.append((counts[hour] - mean) ** 2 / mean)
    return sum(terms) / len(terms)


def test_burstiness_makes_hourly_counts_overdispersed() -> None:
    assert _hourly_dispersion(0.0) < 2.5  # Poisson: 1, give or take the sampling
    # CV 0.5 over ~720 an hour: 1 + 0.25 * 720 ~ 180 expected; far above Poisson either way
    assert _hourly_dispersion(0.5) > 40


def test_a_flat_day_keeps_the_rate_at_every_hour() -> None:
    """daily_amplitude 0: every hour of the day gets `rate` (Poisson counts: the busiest and the
    quietest of 24 hours of ~1,800 stay within ~15% of it), where the default shape has noon
    over four times midnight (1.65 / 0.35)."""
    rate = 0.5
    config = SimulationConfig(
        start=datetime(2026, 1, 5, tzinfo=UTC),
        seed=4,
        rate=rate,
        duration=86_400.0,
        bad_ratio=0.0,
        daily_amplitude=0.0,
    )
    hours = Counter(int(m.occurred_at % 86_400 // 3600) for m in simulate(config))
    assert len(hours) == 24
    assert max(hours.values()) < 1.15 * 3600 * rate
    assert min(hours.values()) > 0.85 * 3600 * rate


def test_amount_sigma_sets_the_spread_of_order_values() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    spreads = {}
    for sigma in (0.5, 1.2):
        config = SimulationConfig(
            start=start, seed=5, rate=2.0, duration=3 * 3600.0, bad_ratio=0.0, amount_sigma=sigma
        )
        logs = [
            math.log(float(e["amount"]))
            for m in simulate(config)
            if (e := orjson.loads(m.value))["type"] == "order_placed"
            and e["dimensions"]["business_unit"] == "retail"
            and e["currency"] == "USD"
        ]
        mean = sum(logs) / len(logs)
        spreads[sigma] = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
    assert spreads[0.5] == pytest.approx(0.5, abs=0.06)
    assert spreads[1.2] == pytest.approx(1.2, abs=0.12)
    with pytest.raises(ValueError, match="burstiness"):
        SimulationConfig(start=start, burstiness=-1)
