"""`<prefix>.kpi` records as `kpi_record` writes them match `schemas.KpiRecord` and
schemas/json/kpi.schema.json, whatever exponent a `Decimal` carries inside."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import KpiRecord
from streams.core.kpi_values import KpiValue
from streams.kafka.kpi_topic import kpi_record

SCHEMA = Path(__file__).resolve().parents[2] / "schemas/json/kpi.schema.json"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # (Decimal as the core may hold it, the plain text a consumer gets), by hand.
        (Decimal("0E-10"), "0.0000000000"),  # a zero ratio quantized to 1e-10
        (Decimal("1E+3"), "1000"),
        (Decimal("-12.50"), "-12.50"),  # net revenue after refunds
        (Decimal("0.000000123"), "0.000000123"),
        (Decimal("123456789012.5"), "123456789012.5"),
    ],
)
def test_values_are_plain_decimal_text_the_schema_accepts(value, text):
    kpi = KpiValue("revenue", "1h", 3600, 7200, (("region", "emea"),), value, value, Decimal(4))
    _, raw = kpi_record(kpi, final=True, partitions=["pulse.events[0]"], now=1.5)

    body = orjson.loads(raw)
    assert body["value"] == text
    assert body["numerator"] == text
    assert body["denominator"] == "4"
    assert Decimal(body["value"]) == value
    KpiRecord.model_validate_json(raw)
    validator = Draft202012Validator(orjson.loads(SCHEMA.read_bytes()))
    assert list(validator.iter_errors(body)) == []


def test_a_ratio_without_denominator_has_a_null_value():
    kpi = KpiValue("margin", "1d", 0, 86400, (), None, Decimal(5), Decimal(0))
    _, raw = kpi_record(kpi, final=False, partitions=["a[0]", "a[1]"], now=2.0)

    record = KpiRecord.model_validate_json(raw)
    assert (record.value, record.numerator, record.denominator) == (None, "5", "0")


@pytest.mark.parametrize("text", ["1E+3", "0E-10", "+1", "01", "1.", ".5", "NaN", "1\n"])
def test_the_schema_refuses_what_is_not_plain_decimal_text(text):
    pattern = orjson.loads(SCHEMA.read_bytes())["properties"]["value"]["anyOf"][0]["pattern"]
    # $ as ECMA-262 means it: the end of the text (the schema's `not` adds the same for "\n").
    assert re.search(pattern.removesuffix("$") + r"\Z", text) is None
