"""The short decode path (`streams.core.fast_decode`) takes only what the contract takes, with
the same values: checked on valid events of every type, on generated broken variants of them,
and on the forms where msgspec, Python's `re` or `datetime` and pydantic could disagree."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EVENT_MODELS, Envelope
from streams.core import ValidationLimits, decode_timed
from streams.core.fast_decode import FAST_TYPES, fast_decode
from streams.core.validation import _contract_decode
from streams.errors import InvalidEvent

ENVELOPE = {
    "event_id": "e-1",
    "occurred_at": "2026-11-22T10:00:00+01:00",
    "source": "oms-eu",
    "schema_version": 1,
}
DIMS = {"business_unit": "retail", "region": "emea", "channel": "web"}
MONEY = {"amount": "129.90", "currency": "EUR"}
TEMPLATES: dict[str, dict[str, Any]] = {
    "order_placed": {
        **MONEY,
        "order_id": "o-1",
        "customer_id": "c-1",
        "promised_delivery_at": "2026-11-25T18:00:00Z",
    },
    "order_cancelled": {**MONEY, "order_id": "o-1"},
    "refund_issued": {**MONEY, "order_id": "o-1"},
    "shipment_dispatched": {"order_id": "o-1", "shipment_id": "s-1", "carrier": "dhl"},
    "shipment_delivered": {
        "order_id": "o-1",
        "shipment_id": "s-1",
        "promised_delivery_at": "2026-11-25T18:00:00.250Z",
    },
    "inventory_received": {**MONEY, "sku": "k-1", "quantity": 12},
    "inventory_issued": {**MONEY, "sku": "k-1", "quantity": "2.5", "order_id": "o-1"},
    "invoice_issued": {**MONEY, "invoice_id": "i-1", "due_at": "2026-12-22T00:00:00-05:00"},
    "payment_received": {**MONEY, "invoice_id": "i-1"},
    "bill_received": {**MONEY, "bill_id": "b-1", "supplier_id": "p-1"},
    "bill_paid": {**MONEY, "bill_id": "b-1"},
    "expense_posted": {**MONEY, "category": "travel"},
    "budget_set": {**MONEY, "period": "2026-11"},
    "investment_made": {**MONEY},
    "benefit_realized": {**MONEY},
    "feedback_submitted": {"csat_score": 4, "nps_score": 9, "order_id": "o-1"},
    "fx_rate": {"currency": "USD", "quote_currency": "EUR", "rate": "0.923456789012"},
}
EXTRA_DIMS = {
    "expense_posted": {"cost_center": "cc-1"},
    "budget_set": {"cost_center": "cc-1"},
    "investment_made": {"initiative_id": "i-7"},
    "benefit_realized": {"initiative_id": "i-7"},
}


def valid(event_type: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": event_type, **ENVELOPE, **TEMPLATES[event_type]}
    if event_type != "fx_rate":
        body["dimensions"] = {**DIMS, **EXTRA_DIMS.get(event_type, {})}
    return body


TRICKY_STRINGS = [
    "2026-11-22T10:00:00Z",
    "2026-11-22t10:00:00z",
    "2026-11-22T10:00:00.123456+00:00",
    "2026-11-22T10:00:00.1234567+00:00",
    "2026-11-22T10:00:00.9999995Z",
    "2026-02-30T10:00:00Z",
    "2026-11-22T24:00:00Z",
    "2026-11-22T10:00:60Z",
    "2026-11-22T10:00:00+24:00",
    "2026-11-22T10:00:00-00:00",
    "2026-11-22T10:00:00+0100",
    "2026-11-22 10:00:00Z",
    "2026-11-22T10:00Z",
    "2026-11-22T10:00:00",
    "1999-11-22T10:00:00Z",
    "2100-01-01T00:00:00Z",
    "2026-11-22T10:00:00Z\n",
    "0.5",
    "00.5",
    "0.0",
    "0",
    "1e3",
    "1.",
    ".5",
    "-5",
    "+5",
    " 5",
    "5 ",
    "1_000",
    "١٢٣",
    "NaN",
    "Infinity",
    "1.1234567",
    "1.123456789012",
    "1.1234567890123",
    "123456789012.5",
    "1234567890123",
    "0.000001",
    "0.0000001",
    "EUR",
    "eur",
    "EUR\n",
    "EURO",
    "retail",
    "retail\n",
    "ret ail",
    "a:b.c-d_e",
    "é",
    "",
    "x" * 64,
    "x" * 65,
    "x" * 129,
    "2026-11",
    "2026-13",
    "FY2026-P03",
]
VALUES = st.one_of(
    st.sampled_from(TRICKY_STRINGS),
    st.text(alphabet="0123456789.-+:eETtZz _aA\n٣", max_size=30),
    st.integers(min_value=-(10**13), max_value=10**13),
    st.sampled_from([0, 1, 5, 11, 10**12, 10**12 - 1, 2**63]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 4.0, 0.5, True, False, None, [], {}, [1], {"a": 1}]),
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339 spellings, most of them valid: any offset, 0-9 fraction digits, `Z` or `z`."""
    moment = draw(st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2101, 1, 1)))
    text = moment.strftime("%Y-%m-%d") + draw(st.sampled_from("TTTt")) + moment.strftime("%H:%M:%S")
    digits = draw(st.integers(0, 9))
    if digits:
        text += "." + draw(st.text(alphabet="0123456789", min_size=digits, max_size=digits))
    minutes = draw(st.integers(-24 * 60 + 1, 24 * 60 - 1))
    if minutes == 0 and draw(st.booleans()):
        return text + draw(st.sampled_from("Zzz"))
    sign = "-" if minutes < 0 else "+"
    return text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


AMOUNTS = st.one_of(
    st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(str),
    st.decimals(min_value=0, max_value=10**13, places=7, allow_nan=False).map(str),
    st.decimals(min_value=0, max_value=10**13, places=13, allow_nan=False).map(str),
    st.integers(min_value=-1, max_value=10**12 + 1),
)
FIELD_VALUES: dict[str, st.SearchStrategy[object]] = {
    **dict.fromkeys(["occurred_at", "promised_delivery_at", "due_at"], timestamps()),
    **dict.fromkeys(["amount", "quantity", "rate"], AMOUNTS),
    **dict.fromkeys(
        ["currency", "quote_currency"],
        st.one_of(
            st.from_regex(r"[A-Z]{3}", fullmatch=True),
            st.from_regex(r"[A-Za-z]{2,4}\n?", fullmatch=True),
        ),
    ),
    **dict.fromkeys(
        ["category", "carrier", *DIMS, "cost_center", "initiative_id"],
        st.one_of(
            st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True),
            st.from_regex(r"[A-Za-z0-9_.:é -]{0,66}\n?", fullmatch=True),
        ),
    ),
    **dict.fromkeys(["csat_score", "nps_score"], st.integers(-1, 11)),
    "period": st.from_regex(r"(FY)?20[0-9]{2}-P?[0-9]{2}", fullmatch=True),
}
"""Values near each field's valid forms (most valid, many just not)."""


def value_for(draw: st.DrawFn, name: str) -> object:
    """A copy: `VALUES` samples shared lists and dicts, and a later change of the message (a
    dimension set into a `dimensions` drawn as `{}`) must not change what later examples draw
    (Hypothesis then fails the run as a flaky strategy)."""
    if name in FIELD_VALUES and draw(st.integers(0, 3)):
        return copy.deepcopy(draw(FIELD_VALUES[name]))
    return copy.deepcopy(draw(VALUES))


FIELDS = sorted({key for t in TEMPLATES for key in valid(t)} | {"dimensions", "unknown"})
DIM_FIELDS = sorted({*DIMS, "cost_center", "initiative_id", "unknown"})


def pick(draw: st.DrawFn, present: list[str], known: list[str]) -> list[str]:
    """Mostly the fields present, sometimes any field (unknown to the type, or missing)."""
    return present if present and draw(st.integers(0, 3)) else known


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A valid event of any type, broken or not by up to three changes, written in one of
    several JSON spellings, perhaps with a repeated key."""
    body = valid(draw(st.sampled_from(sorted(TEMPLATES))))
    for _ in range(draw(st.integers(0, 2))):
        change = draw(
            st.sampled_from(["set", "set", "set", "set_dim", "drop", "drop_dim", "null", "type"])
        )
        dims = body.get("dimensions")
        if change == "set":
            name = draw(st.sampled_from(pick(draw, sorted(body), FIELDS)))
            body[name] = value_for(draw, name)
        elif change == "set_dim" and isinstance(dims, dict):
            name = draw(st.sampled_from(pick(draw, sorted(dims), DIM_FIELDS)))
            dims[name] = value_for(draw, name)
        elif change == "drop" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif change == "drop_dim" and isinstance(dims, dict) and dims:
            dims.pop(draw(st.sampled_from(sorted(dims))))
        elif change == "null":
            body[draw(st.sampled_from(FIELDS))] = None
        elif change == "type":
            body["type"] = draw(st.sampled_from(sorted(TEMPLATES)))
    spelling = draw(
        st.sampled_from(["orjson"] * 6 + ["spaced", "ascii", "repeated", "repeated_dim"])
    )
    if spelling == "spaced":
        return json.dumps(body, separators=(" , ", " : ")).encode()
    if spelling == "ascii":
        return json.dumps(body, ensure_ascii=True).encode()
    raw = orjson.dumps(body)
    if spelling == "repeated" and body:
        key = draw(st.sampled_from(sorted(body)))
        raw = raw[:-1] + b"," + orjson.dumps(key) + b":" + orjson.dumps(draw(VALUES)) + b"}"
    elif spelling == "repeated_dim" and isinstance(body.get("dimensions"), dict):
        dims = orjson.dumps(body["dimensions"])
        inner = dims[:-1] + b',"region":"apac"}' if len(dims) > 2 else dims
        raw = raw.replace(dims, inner, 1)
    return raw


def assert_same(fast: Envelope, contract: Envelope) -> None:
    """Every field of the contract's model has the same value and type on both, and the same
    text (a Decimal's exponent, a datetime's offset)."""
    assert fast.type == contract.type
    for name in EVENT_MODELS[contract.type].model_fields:
        mine, theirs = getattr(fast, name), getattr(contract, name)
        if name == "dimensions":
            for dimension in type(theirs).model_fields:
                assert getattr(mine, dimension) == getattr(theirs, dimension), dimension
            continue
        assert type(mine) is type(theirs) or isinstance(theirs, datetime), name
        assert mine == theirs, name
        if isinstance(theirs, Decimal):
            assert str(mine) == str(theirs), name
        if isinstance(theirs, datetime):
            assert isinstance(mine, datetime), name
            assert mine.utcoffset() == theirs.utcoffset(), name
            assert mine.isoformat() == theirs.isoformat(), name


@pytest.mark.parametrize("event_type", sorted(TEMPLATES))
def test_every_valid_event_is_taken_with_the_contract_values(event_type: str) -> None:
    raw = orjson.dumps(valid(event_type))
    fast = fast_decode(raw)
    assert fast is not None
    assert_same(fast, _contract_decode(raw))
    assert event_type in FAST_TYPES


@settings(max_examples=4000, deadline=None)
@given(messages())
def test_what_the_short_path_takes_the_contract_takes_with_equal_values(raw: bytes) -> None:
    fast = fast_decode(raw)
    if fast is None:
        return
    try:
        contract = _contract_decode(raw)
    except InvalidEvent as error:
        pytest.fail(f"the short path took what the contract refuses ({error}): {raw!r}")
    assert_same(fast, contract)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "2026-11-22t10:00:00z"),  # the contract takes it; the short path not
        ("occurred_at", "2026-11-22T10:00:00.1234567+00:00"),
        ("occurred_at", "2026-02-30T10:00:00Z"),
        ("amount", "00.5"),
        ("amount", "1e3"),
        ("amount", 12.5),  # a JSON float: the contract's way
        ("currency", "EUR\n"),
        ("order_id", None),  # an explicit null of a required field
        ("customer_id", None),  # an explicit null of an optional one: the contract's way
        ("unknown", "x"),
    ],
)
def test_forms_the_short_path_leaves_to_the_contract(field: str, value: object) -> None:
    body = valid("order_placed")
    body[field] = value
    assert fast_decode(orjson.dumps(body)) is None


def test_a_repeated_key_a_missing_cost_center_and_an_escape_go_the_contracts_way() -> None:
    raw = orjson.dumps(valid("order_placed"))
    assert fast_decode(raw[:-1] + b',"amount":"1.00"}') is None
    expense = valid("expense_posted")
    del expense["dimensions"]["cost_center"]
    assert fast_decode(orjson.dumps(expense)) is None
    assert fast_decode(raw.replace(b'"o-1"', b'"o\\u002d1"')) is None
    limits = ValidationLimits()
    with pytest.raises(InvalidEvent, match="more than once"):
        decode_timed(raw[:-1] + b',"amount":"1.00"}', limits, 2e9)
    with pytest.raises(InvalidEvent, match="cost_center"):
        decode_timed(orjson.dumps(expense), limits, 2e9)
    event, _ = decode_timed(raw.replace(b'"o-1"', b'"o\\u002d1"'), limits, 2e9)
    assert event.order_id == "o-1"  # type: ignore[attr-defined]
