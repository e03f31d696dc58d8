"""No event the contract accepts can make the core raise anything but `InvalidEvent`.

Each example holds one event of every type and a few more. Fields come from the contract's own
edges: candidate periods and promise dates in the years 0000-9999, kept when the pattern of the
contract's JSON Schema accepts them (so the generator follows the contract, not the core); the
largest and smallest amounts, quantities and rates; any Unicode identifier; offsets up to
±23:59; business time zones from UTC-11 to UTC+14. They run as in the worker: `decode_event`,
`PartitionState.apply`, then a checkpoint, the exported values, expiry, the final values a
backtest emits, and a replay of the changelog. Before issue 17 a `budget_set` for "0000-01" or
"9999-12" passed the contract and raised ValueError in the core, stopping every worker that
read it; this test found it again against that contract."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas import EVENT_TYPES, BudgetSet, ShipmentDelivered
from schemas.strict import positive_decimal_pattern
from streams.core import (
    Finalizer,
    FxTable,
    StateConfig,
    ValidationLimits,
    Windows,
    WorkerState,
    compile_catalog,
    decode_event,
)
from streams.errors import InvalidEvent

CATALOG = compile_catalog()


def contract_pattern(model: type[BaseModel], field: str) -> str | None:
    """The `pattern` the contract's JSON Schema gives a string field, if any."""
    spec = model.model_json_schema()["properties"][field]
    branches = [b for b in spec.get("anyOf", [spec]) if b.get("type") == "string"]
    return branches[0].get("pattern") if branches else None


def edges(model: type[BaseModel], field: str, candidates: list[str]) -> list[str]:
    """The candidates the contract accepts: the generator follows the contract, not the core."""
    pattern = contract_pattern(model, field)
    if pattern is None:
        return candidates
    # Python's `$` also matches before a final newline; JSON Schema's (ECMA-262) does not.
    return [c for c in candidates if re.search(pattern.removesuffix("$") + r"\Z", c)]


YEARS = ["0000", "0001", "1999", "2000", "2099", "2100", "9999"]
PERIOD = contract_pattern(BudgetSet, "period") or r"^[0-9]{4}-[0-9]{2}$"
periods = st.one_of(
    st.sampled_from(edges(BudgetSet, "period", [f"{y}-{m}" for y in YEARS for m in ("01", "12")])),
    st.from_regex(PERIOD),
)
promise_edges = edges(
    ShipmentDelivered,
    "promised_delivery_at",
    [f"{y}-01-01T00:00:00+23:59" for y in YEARS] + [f"{y}-12-31T23:59:59-23:59" for y in YEARS],
)
NOW = datetime(2033, 5, 18, tzinfo=UTC).timestamp()
FIRST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
ZONES = ("UTC", "Europe/Berlin", "Pacific/Kiritimati", "Pacific/Pago_Pago")
"""Business time zones from UTC-11 to UTC+14, one with DST."""
MONEY_TYPES = (
    "order_placed",
    "order_cancelled",
    "refund_issued",
    "inventory_received",
    "inventory_issued",
    "invoice_issued",
    "payment_received",
    "bill_received",
    "bill_paid",
    "expense_posted",
    "budget_set",
    "investment_made",
    "benefit_realized",
)

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timedelta(minutes=m))
identifiers = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=128)
labels = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)
# A few values per dimension, so that events meet in the same series and join on order ids.
dimension_values = st.one_of(st.sampled_from(["retail", "eu", "cc-1", "i-1"]), labels)
order_ids = st.one_of(st.sampled_from(["o-1", "o-2"]), identifiers)
currencies = st.one_of(
    st.sampled_from(["EUR", "USD", "GBP"]), st.from_regex(r"[A-Z]{3}", fullmatch=True)
)


def decimals(integer_digits: int, fraction_digits: int) -> st.SearchStrategy[Any]:
    """What the contract accepts for a decimal: plain strings up to the limits, and numbers."""
    edges = [
        "1",
        "9" * integer_digits + "." + "9" * fraction_digits,
        "0." + "0" * (fraction_digits - 1) + "1",
    ]
    return st.one_of(
        st.sampled_from(edges),
        st.from_regex(positive_decimal_pattern(integer_digits, fraction_digits), fullmatch=True),
        st.integers(1, 10**integer_digits - 1),
        st.floats(
            min_value=10.0**-fraction_digits, max_value=10.0**integer_digits, exclude_max=True
        ),
    )


def rfc3339(moment: float, offset: timedelta, fraction: bool) -> str:
    text = datetime.fromtimestamp(moment, timezone(offset)).isoformat(
        timespec="microseconds" if fraction else "seconds"
    )
    return text.replace("+00:00", "Z") if offset == timedelta(0) and fraction else text


@st.composite
def times(draw: st.DrawFn, low: float, high: float) -> str:
    edge = draw(st.sampled_from([low, high, None]))
    moment = edge if edge is not None else draw(st.floats(low, high))
    return rfc3339(moment, draw(offsets), draw(st.booleans()))


def planned_times() -> st.SearchStrategy[str]:
    """Promise and due times: the years 2000-2099 as written, whatever the offset, and the
    contract's edges."""
    return st.sampled_from(promise_edges) | st.builds(
        lambda year, seconds, offset: (
            datetime(year, 1, 1, tzinfo=timezone(offset)) + timedelta(seconds=seconds)
        ).isoformat(),
        st.sampled_from([2000, 2024, 2098]),
        st.integers(0, 2 * 365 * 86400 - 1),  # to the end of the next year: 2099 at most
        offsets,
    )


@st.composite
def events(draw: st.DrawFn, event_type: str | None = None) -> dict[str, Any]:
    if event_type is None:
        event_type = draw(st.sampled_from(sorted(EVENT_TYPES)))
    event: dict[str, Any] = {
        "type": event_type,
        "event_id": draw(st.one_of(st.sampled_from(["e-1", "e-2"]), identifiers)),
        "occurred_at": draw(times(FIRST, NOW)),
        "source": draw(identifiers),
        "schema_version": 1,
    }
    if event_type != "fx_rate":
        event["dimensions"] = {
            "business_unit": draw(dimension_values),
            "region": draw(dimension_values),
            "cost_center": draw(dimension_values),
            "initiative_id": draw(dimension_values),
            "channel": draw(st.none() | dimension_values),
        }
    if event_type in MONEY_TYPES:
        event["amount"] = draw(decimals(12, 6))
        event["currency"] = draw(currencies)
    fields: dict[str, st.SearchStrategy[Any]] = {
        "order_placed": st.fixed_dictionaries(
            {"order_id": order_ids},
            optional={"customer_id": identifiers, "promised_delivery_at": planned_times()},
        ),
        "order_cancelled": st.fixed_dictionaries({"order_id": order_ids}),
        "refund_issued": st.fixed_dictionaries({"order_id": order_ids}),
        "shipment_dispatched": st.fixed_dictionaries(
            {"order_id": order_ids, "shipment_id": identifiers}, optional={"carrier": labels}
        ),
        "shipment_delivered": st.fixed_dictionaries(
            {
                "order_id": order_ids,
                "shipment_id": identifiers,
                "promised_delivery_at": planned_times(),
            }
        ),
        "inventory_received": st.fixed_dictionaries(
            {"sku": identifiers, "quantity": decimals(12, 6)}
        ),
        "inventory_issued": st.fixed_dictionaries(
            {"sku": identifiers, "quantity": decimals(12, 6)}, optional={"order_id": order_ids}
        ),
        "invoice_issued": st.fixed_dictionaries(
            {"invoice_id": identifiers},
            optional={"customer_id": identifiers, "due_at": planned_times()},
        ),
        "payment_received": st.fixed_dictionaries({"invoice_id": identifiers}),
        "bill_received": st.fixed_dictionaries(
            {"bill_id": identifiers},
            optional={"supplier_id": identifiers, "due_at": planned_times()},
        ),
        "bill_paid": st.fixed_dictionaries({"bill_id": identifiers}),
        "expense_posted": st.fixed_dictionaries({"category": labels}),
        "budget_set": st.fixed_dictionaries({"period": periods}),
        "investment_made": st.fixed_dictionaries({}),
        "benefit_realized": st.fixed_dictionaries({}),
        "feedback_submitted": st.fixed_dictionaries(
            {"csat_score": st.integers(1, 5)}, optional={"nps_score": st.integers(0, 10)}
        ),
        "fx_rate": st.fixed_dictionaries(
            {
                "currency": currencies,
                "quote_currency": st.sampled_from(["EUR", "USD"]),
                "rate": decimals(12, 12),
            }
        ),
    }
    event |= draw(fields[event_type])
    return event


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One event of every type (so each example probes each type's edges), a few more, in any
    order."""
    every = [draw(events(event_type)) for event_type in sorted(EVENT_TYPES)]
    return draw(st.permutations(every + draw(st.lists(events(), max_size=8))))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(stream=streams(), zone=st.sampled_from(ZONES))
def test_contract_valid_events_raise_nothing_but_invalid_event_in_the_core(stream, zone):
    config = StateConfig(
        catalog=CATALOG,
        windows=Windows.for_timezone(ZoneInfo(zone)),
        watermark_delay=5.0,
        allowed_lateness=60.0,
        dedupe_max_entries=1000,
        retained_windows=3,
        fx=FxTable("EUR", {"USD": Decimal("0.9"), "GBP": Decimal("1.25")}),
    )
    worker = WorkerState(config)
    part = worker.assign(("events", 0))
    counted = 0
    for event in stream:
        try:
            part.apply(decode_event(orjson.dumps(event), ValidationLimits(), NOW), NOW)
        except InvalidEvent:
            continue
        counted += 1
    log = [part.checkpoint(len(stream))]
    worker.latest_values()
    part.expire(worker.watermark())
    log += part.snapshot(len(stream))
    Finalizer(CATALOG, config.windows, 60.0).final_values(
        [part.store], math.inf, part.first_event_time, part.watermark.max_event_time
    )
    replayed = worker.new_partition()
    for record in log:
        replayed.restore(orjson.loads(orjson.dumps(record)))

    assert replayed.next_offset == len(stream)
    assert (replayed.first_event_time < math.inf) is (counted > 0)
