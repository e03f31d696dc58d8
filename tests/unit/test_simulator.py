"""The simulator: deterministic, on contract, with the bad messages and daily shape it promises."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pydantic
import pytest

from schemas import event_adapter
from streams.simulator import BAD_KINDS, SimulatedMessage, SimulationConfig, simulate

MIDNIGHT = datetime(2024, 3, 1, tzinfo=UTC)
START = MIDNIGHT + timedelta(hours=12)  # the busy hours, where a short run holds many events
ORDER_KEYED = {"order_placed", "order_cancelled", "refund_issued"}
WEIGHTS = {
    "order_placed": 0.60,
    "inventory_issued": 0.15,
    "expense_posted": 0.08,
    "feedback_submitted": 0.08,
    "order_cancelled": 0.05,
    "refund_issued": 0.04,
}


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
def bad_heavy(make_config: Callable[..., SimulationConfig]) -> list[SimulatedMessage]:
    """Half bad, so that each kind shows up a few hundred times; a small size limit."""
    return list(simulate(make_config(seed=7, bad_ratio=0.5, max_event_bytes=4096)))


def _within_sigmas(count: int, n: int, p: float, sigmas: float) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_same_seed_gives_identical_bytes(make_config: Callable[..., SimulationConfig]) -> None:
    config = make_config(seed=3, bad_ratio=0.2)
    first = list(simulate(config))
    assert first == list(simulate(make_config(seed=3, bad_ratio=0.2)))
    assert len(first) > 1000


def test_different_seed_gives_different_messages(
    make_config: Callable[..., SimulationConfig],
) -> None:
    assert list(simulate(make_config(seed=1))) != list(simulate(make_config(seed=2)))


def test_valid_messages_follow_the_contract(stream: list[SimulatedMessage]) -> None:
    end = START + timedelta(seconds=240)
    valid = [m for m in stream if m.bad_kind is None]
    assert len(valid) > 19_000
    for message in valid:
        raw = orjson.loads(message.value)
        event = event_adapter.validate_python(raw)
        assert START <= event.occurred_at <= end
        assert event.occurred_at.timestamp() == message.occurred_at
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", raw["occurred_at"])
        expected_key = raw["order_id"] if event.type in ORDER_KEYED else raw["event_id"]
        assert message.key == expected_key.encode()
        assert len(message.value) < 1024


def test_event_ids_are_unique(stream: list[SimulatedMessage]) -> None:
    ids = [orjson.loads(m.value)["event_id"] for m in stream if m.bad_kind is None]
    assert len(ids) == len(set(ids))


def test_money_dimensions_and_sources(stream: list[SimulatedMessage]) -> None:
    emea_currencies: Counter[str] = Counter()
    for message in stream:
        if message.bad_kind is not None:
            continue
        raw = orjson.loads(message.value)
        dims, kind = raw["dimensions"], raw["type"]
        assert dims["business_unit"] in {"retail", "wholesale", "marketplace"}
        assert dims["region"] in {"emea", "amer", "apac"}
        if kind in ORDER_KEYED:
            assert dims["channel"] in {"web", "store", "partner"}
            assert raw["source"] == f"oms-{dims['region']}"
        if kind == "expense_posted":
            assert re.fullmatch(rf"cc-{dims['business_unit']}-\d+", dims["cost_center"])
            assert raw["category"] in {"marketing", "logistics", "it", "payroll"}
        if "amount" in raw:
            assert re.fullmatch(r"\d+\.\d{2}", raw["amount"]), raw["amount"]
            if dims["region"] == "emea":
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


def test_valid_event_mix_follows_the_weights(stream: list[SimulatedMessage]) -> None:
    kinds = Counter(orjson.loads(m.value)["type"] for m in stream if m.bad_kind is None)
    n = kinds.total()
    for kind, weight in WEIGHTS.items():
        assert _within_sigmas(kinds[kind], n, weight, 5), (kind, kinds[kind] / n)


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


def test_daily_rate_and_shape(make_config: Callable[..., SimulationConfig]) -> None:
    rate, start = 1.0, MIDNIGHT.timestamp()
    config = make_config(start=MIDNIGHT, rate=rate, duration=86_400.0)
    hours = Counter(int((m.occurred_at - start) // 3600) for m in simulate(config))
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
    ],
)
def test_config_errors_name_the_field(
    make_config: Callable[..., SimulationConfig], field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=f"^{field} "):
        make_config(**{field: value})
