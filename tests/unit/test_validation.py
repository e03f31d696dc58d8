"""decode_event: bytes in, a typed event or an InvalidEvent with the exact reason out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from schemas import (
    ExpensePosted,
    FeedbackSubmitted,
    InventoryIssued,
    OrderCancelled,
    OrderPlaced,
    RefundIssued,
)
from streams.core import ValidationLimits, decode_event
from streams.errors import InvalidEvent

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z
NOW = float(T0)  # the wall clock passed to decode_event; events default to occurring at T0
LIMITS = ValidationLimits(max_event_bytes=1024, max_future_skew_seconds=300.0)


def reason_of(raw: bytes | None) -> str:
    with pytest.raises(InvalidEvent) as caught:
        decode_event(raw, LIMITS, NOW)
    return caught.value.reason


@pytest.mark.parametrize(
    ("event_type", "model"),
    [
        ("order_placed", OrderPlaced),
        ("order_cancelled", OrderCancelled),
        ("refund_issued", RefundIssued),
        ("inventory_issued", InventoryIssued),
        ("expense_posted", ExpensePosted),
        ("feedback_submitted", FeedbackSubmitted),
    ],
)
def test_a_valid_event_of_each_type_decodes_to_its_model(make_event, event_type, model):
    event = decode_event(make_event(type=event_type, event_id="e-1"), LIMITS, NOW)

    # The short path's struct or the contract's model: the model's class name and fields.
    assert type(event).__name__ == model.__name__
    assert event.type == event_type
    assert event.event_id == "e-1"
    assert event.occurred_at.timestamp() == T0
    assert (event.dimensions.business_unit, event.dimensions.region) == ("retail", "eu")


def test_money_keeps_every_digit_as_decimal(make_event):
    event = decode_event(make_event(amount="1234.567891", currency="USD"), LIMITS, NOW)

    assert type(event).__name__ == "OrderPlaced"
    assert event.amount == Decimal("1234.567891")
    assert event.currency == "USD"


@pytest.mark.parametrize(
    "scores", [{"csat_score": 5}, {"nps_score": 0}, {"csat_score": 1, "nps_score": 10}]
)
def test_feedback_with_either_or_both_scores_is_valid(make_event, scores):
    raw = make_event(type="feedback_submitted", drop=("csat_score",), **scores)

    event = decode_event(raw, LIMITS, NOW)

    assert type(event).__name__ == "FeedbackSubmitted"
    assert (event.csat_score, event.nps_score) == (
        scores.get("csat_score"),
        scores.get("nps_score"),
    )


# --- undecodable -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"\xff\xfe\x00garbage", b"{not json", b'{"type": "order_placed"'],
    ids=["none", "empty", "binary-garbage", "broken-json", "truncated-json"],
)
def test_empty_or_garbage_values_are_undecodable(raw):
    assert reason_of(raw) == "undecodable"


# --- oversized ---------------------------------------------------------------------------------


def test_a_value_at_the_size_limit_is_accepted_and_one_byte_more_is_oversized(make_event):
    raw = make_event()
    assert len(raw) < 1024  # the padding below is JSON whitespace, so the event stays valid
    at_limit = raw + b" " * (1024 - len(raw))
    over_limit = at_limit + b" "

    assert decode_event(at_limit, LIMITS, NOW).event_id == orjson.loads(raw)["event_id"]
    assert reason_of(over_limit) == "oversized"


def test_size_is_checked_before_parsing():
    # 2000 bytes of garbage: the size check answers before the JSON parser sees it.
    assert reason_of(b"x" * 2000) == "oversized"


# --- schema_violation --------------------------------------------------------------------------


def test_a_json_array_is_a_schema_violation(make_payload):
    assert reason_of(orjson.dumps([make_payload()])) == "schema_violation"


@pytest.mark.parametrize(
    "payload_change",
    [
        {"drop": ("order_id",)},
        {"drop": ("event_id",)},
        {"drop": ("occurred_at",)},
        {"drop": ("dimensions",)},
        {"dimensions": {"business_unit": "retail"}},
        {"coupon": "SPRING24"},
        {"dimensions": {"business_unit": "retail", "region": "eu", "colour": "red"}},
        {"currency": "eur"},
        {"currency": "EURO"},
        {"amount": "-5.00"},
        {"amount": "0"},
        {"amount": "1.1234567"},
        {"occurred_at": "2024-03-01T12:00:00"},
        {"schema_version": 2},
        {"type": "feedback_submitted", "drop": ("csat_score",)},
        {"type": "feedback_submitted", "csat_score": 6},
    ],
    ids=[
        "missing-order_id",
        "missing-event_id",
        "missing-occurred_at",
        "missing-dimensions",
        "missing-region",
        "extra-field",
        "extra-dimension",
        "lowercase-currency",
        "four-letter-currency",
        "negative-amount",
        "zero-amount",
        "seven-decimal-places",
        "naive-occurred_at",
        "future-schema-version",
        "feedback-without-scores",
        "csat-out-of-range",
    ],
)
def test_contract_breaches_are_schema_violations(make_payload, payload_change: dict[str, Any]):
    assert reason_of(orjson.dumps(make_payload(**payload_change))) == "schema_violation"


# --- unknown_type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload_change",
    [{"type": "order_shipped"}, {"drop": ("type",)}, {"type": None}, {"type": 7}],
    ids=["unknown-name", "missing", "null", "number"],
)
def test_unknown_or_missing_type_is_unknown_type(make_payload, payload_change):
    assert reason_of(orjson.dumps(make_payload(**payload_change))) == "unknown_type"


@pytest.mark.parametrize("bad_type", [[], {}], ids=["list", "object"])
def test_an_unhashable_type_value_is_rejected_not_crashing(make_payload, bad_type):
    # A JSON array/object `type` once raised TypeError("unhashable type"), a poison pill that
    # stopped the partition on every restart. Any non-string type is not a known type.
    assert reason_of(orjson.dumps(make_payload(type=bad_type))) == "unknown_type"


# --- non_finite_number -------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_amount_strings_are_non_finite_numbers(make_event, amount):
    assert reason_of(make_event(amount=amount)) == "non_finite_number"


def test_a_raw_json_number_overflowing_a_double_is_a_non_finite_number(make_event):
    raw = make_event(amount="__AMOUNT__").replace(b'"__AMOUNT__"', b"1e999")
    assert b'"amount":1e999' in raw

    assert reason_of(raw) == "non_finite_number"


# --- timestamp_out_of_range --------------------------------------------------------------------


@pytest.mark.parametrize(
    "occurred_at",
    [
        "1999-12-31T23:59:59+00:00",
        "1999-06-01T00:00:00Z",
        # 00:30 at +01:00 is 1999-12-31T23:30Z: the offset is honoured.
        "2000-01-01T00:30:00+01:00",
    ],
)
def test_events_before_2000_are_out_of_range(make_event, occurred_at):
    assert reason_of(make_event(occurred_at=occurred_at)) == "timestamp_out_of_range"


def test_the_first_instant_of_2000_is_accepted(make_event):
    event = decode_event(make_event(occurred_at="2000-01-01T00:00:00Z"), LIMITS, NOW)

    assert event.occurred_at.timestamp() == 946_684_800  # 30 years incl. 7 leap days * 86400


def test_future_skew_boundary(make_event):
    # skew 300 s: the latest plausible event time is NOW + 300 = T0 + 300.
    just_inside = make_event(at=NOW + 299)
    on_the_limit = make_event(at=NOW + 300)
    one_second_beyond = make_event(at=NOW + 301)

    assert decode_event(just_inside, LIMITS, NOW).occurred_at.timestamp() == T0 + 299
    assert decode_event(on_the_limit, LIMITS, NOW).occurred_at.timestamp() == T0 + 300
    assert reason_of(one_second_beyond) == "timestamp_out_of_range"


def test_invalid_event_carries_reason_and_detail_until_located(make_event):
    with pytest.raises(InvalidEvent) as caught:
        decode_event(make_event(type="order_shipped"), LIMITS, NOW)
    error = caught.value

    assert (error.topic, error.partition, error.offset) == (None, None, None)
    assert "order_shipped" in error.detail
    assert error.located("pulse.events", 2, 17) is error
    assert (error.topic, error.partition, error.offset) == ("pulse.events", 2, 17)


@pytest.mark.parametrize("epoch", [1767261600, 1767261600.5])
def test_an_epoch_number_is_not_an_rfc3339_timestamp(make_payload, epoch):
    # The contract says RFC 3339 with an offset; pydantic alone would take a number.
    assert reason_of(orjson.dumps(make_payload(occurred_at=epoch))) == "schema_violation"


# --- bounds that keep the core from raising (issue 17) -----------------------------------------


def budget(make_payload, period: str) -> bytes:
    return orjson.dumps(make_payload(type="budget_set", drop=("order_id",), period=period))


@pytest.mark.parametrize("period", ["0000-01", "0001-01", "1999-12", "2100-01", "9999-12"])
def test_a_budget_period_outside_2000_to_2099_is_a_schema_violation(make_payload, period):
    # "0000-01" and "9999-12" once passed the contract and made the core raise ValueError
    # (year 0, or year 10000 for the month's end), stopping every worker that read them.
    assert reason_of(budget(make_payload, period)) == "schema_violation"


@pytest.mark.parametrize(
    ("period", "month_start"), [("2000-01", 946_684_800), ("2099-12", 4_099_766_400)]
)
def test_the_first_and_last_budget_periods_are_counted(
    make_payload, make_partition, period, month_start
):
    # month_start: 2000-01-01 = 10957 days after 1970-01-01; 2099-12-01 = 47451 days after.
    # Set on the month's second day: a budget for a period closed beyond the restatement
    # horizon (issue 15) would be dead-lettered as late.
    part = make_partition()
    raw = orjson.dumps(
        orjson.loads(budget(make_payload, period))
        | {"occurred_at": datetime.fromtimestamp(month_start + 86400, UTC).isoformat()}
    )
    part.apply(decode_event(raw, LIMITS, 4_200_000_000))

    assert [start for window, start in part.store.buckets if window == "1mo"] == [month_start]


@pytest.mark.parametrize(
    "promised", ["1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59"]
)
def test_a_promise_outside_2000_to_2099_is_a_schema_violation(make_event, promised):
    raw = make_event(type="shipment_delivered", promised_delivery_at=promised)

    assert reason_of(raw) == "schema_violation"


# --- strict where the contract means strict (issue 17) -----------------------------------------


@pytest.mark.parametrize(
    "payload_change",
    [
        {"amount": "١٢٣"},  # Arabic-Indic digits: Python's Decimal reads them as 123
        {"amount": "1_000"},
        {"amount": " 12.50"},
        {"amount": "+12.50"},
        {"amount": "1e3"},
        {"amount": "1e400"},
        {"amount": "012.50"},
        {"amount": "1.5000000"},
        {"amount": "1234567890123.5"},
        {"amount": True},
        {"amount": 1e300},
        {"occurred_at": "1709294400"},
        {"occurred_at": "1709294400.5"},
        {"occurred_at": "2024-03-01 12:00:00+00:00"},
        {"occurred_at": "2024-03-01T12:00+00:00"},
        {"schema_version": True},
        {"schema_version": "1"},
        {"type": "feedback_submitted", "csat_score": True},
        {"type": "feedback_submitted", "csat_score": "4"},
        {"type": "feedback_submitted", "csat_score": "٤"},
        {"type": "feedback_submitted", "nps_score": "1_0"},
        {"type": "inventory_issued", "quantity": "٢"},
        {"dimensions": {"business_unit": "retail", "region": 7}},
        {"order_id": 17},
    ],
    ids=[
        "arabic-indic-digits",
        "underscore-digits",
        "padded-amount",
        "signed-amount",
        "exponent-amount",
        "huge-exponent-amount",
        "leading-zero-amount",
        "seven-places-with-trailing-zeros",
        "thirteen-integer-digits",
        "boolean-amount",
        "huge-number-amount",
        "epoch-string",
        "epoch-string-with-fraction",
        "space-for-T",
        "no-seconds",
        "boolean-schema-version",
        "string-schema-version",
        "boolean-score",
        "string-score",
        "arabic-indic-score",
        "underscore-score",
        "arabic-indic-quantity",
        "number-as-label",
        "number-as-identifier",
    ],
)
def test_input_outside_the_contract_is_a_schema_violation(make_payload, payload_change):
    assert reason_of(orjson.dumps(make_payload(**payload_change))) == "schema_violation"


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("12.50", Decimal("12.50")),
        ("0.000001", Decimal("0.000001")),
        ("999999999999.999999", Decimal("999999999999.999999")),
        (12.5, Decimal("12.5")),
        (0.1, Decimal("0.1")),
        (7, Decimal(7)),
    ],
)
def test_amounts_as_plain_decimal_strings_and_json_numbers_are_valid(make_event, amount, expected):
    event = decode_event(make_event(amount=amount), LIMITS, NOW)

    assert type(event).__name__ == "OrderPlaced"
    assert event.amount == expected


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2024-03-01T12:00:00Z",
        "2024-03-01t12:00:00z",
        "2024-03-01T12:00:00.000+00:00",
        "2024-03-01T13:00:00+01:00",
        "2024-03-01T06:30:00-05:30",
    ],
)
def test_rfc3339_times_with_any_offset_are_valid(make_event, occurred_at):
    assert (
        decode_event(make_event(occurred_at=occurred_at), LIMITS, NOW).occurred_at.timestamp() == T0
    )


def test_a_whole_number_written_with_a_point_is_a_score(make_event):
    # JSON Schema counts 4.0 as an integer, so the worker does too.
    event = decode_event(make_event(type="feedback_submitted", csat_score=4.0), LIMITS, NOW)

    assert type(event).__name__ == "FeedbackSubmitted"
    assert event.csat_score == 4


# --- repeated keys (issue 17) --------------------------------------------------------------------


def with_repeat(raw: bytes, first: bytes) -> bytes:
    """`raw` with `first` inserted as the first member of its top-level object."""
    assert raw.startswith(b"{")
    return b"{" + first + b"," + raw[1:]


@pytest.mark.parametrize(
    ("first", "key"),
    [
        (b'"amount":"abc"', "amount"),  # the first is invalid, the last valid: orjson kept the last
        (b'"amount":"10.00"', "amount"),  # the same value twice
        (b'"amount" : "999.00"', "amount"),  # whitespace around the colon
        (b'"type":"order_cancelled"', "type"),
        (b'"\\u0061mount":"5.00"', "amount"),  # "\u0061mount" is "amount"
        # A colon escaped in the kept event_id must not hide the extra key's colon.
        (b'"source":"x"', "source"),
        (b'"dimensions":{"business_unit":"a:b:c","region":"x"}', "dimensions"),
    ],
    ids=["invalid-then-valid", "same-value", "spaced", "type", "escaped-key", "source", "object"],
)
def test_a_repeated_key_is_a_schema_violation_naming_it(make_event, first, key):
    raw = with_repeat(make_event(event_id="e\\u003a1"), first)
    # orjson.dumps escaped the backslash: make the id's escape a real one, "e:1" once decoded.
    raw = raw.replace(b"e\\\\u003a1", b"e\\u003a1")
    assert orjson.loads(raw)["event_id"] == "e:1"

    with pytest.raises(InvalidEvent) as caught:
        decode_event(raw, LIMITS, NOW)

    assert caught.value.reason == "schema_violation"
    assert caught.value.detail == f"key {key!r} appears more than once"


def test_a_key_repeated_inside_dimensions_is_named(make_event):
    raw = make_event().replace(b'"region":"eu"', b'"region":"us","region":"eu"')

    with pytest.raises(InvalidEvent) as caught:
        decode_event(raw, LIMITS, NOW)

    assert caught.value.detail == "key 'region' appears more than once"


@pytest.mark.parametrize(
    "raw_id",
    [b"e\\u003a1", b"e\\u003A1", b"a\\\\u003a", b"x:y", b"\\u00e9t\\u00e9"],
    ids=["escaped-colon", "escaped-colon-upper", "escaped-backslash", "colon", "escaped-letters"],
)
def test_escapes_and_colons_in_values_are_not_repeats(make_event, raw_id):
    # b"a\\\\u003a" is the JSON text a\\u003a: a backslash, then "u003a" (no colon at all).
    raw = make_event(event_id="__ID__").replace(b"__ID__", raw_id)

    event = decode_event(raw, LIMITS, NOW)

    assert event.event_id == orjson.loads(b'"' + raw_id + b'"')


def test_json_with_spaces_and_another_key_order_is_not_a_repeat(make_payload):
    payload = make_payload()
    raw = json.dumps(dict(reversed(payload.items())), indent=2).encode()

    assert decode_event(raw, LIMITS, NOW).event_id == payload["event_id"]
    assert reason_of(raw.replace(b'"currency"', b'"currency": "USD",\n  "currency"')) == (
        "schema_violation"
    )
