"""The committed JSON Schema files are exactly what the pydantic models generate."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas import render_json_schemas
from streams.core import ValidationLimits, decode_event
from streams.errors import InvalidEvent

# The files as committed in this checkout, whatever copy of the package Python imports.
COMMITTED_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json"
FIX = "run `pulse generate` and commit schemas/json/"


def test_the_committed_schema_files_are_the_generated_ones():
    expected = render_json_schemas()
    committed = {path.name: path.read_text() for path in COMMITTED_DIR.glob("*.json")}

    assert sorted(committed) == sorted(expected), f"schema files differ from the models: {FIX}"
    drifted = sorted(name for name, text in expected.items() if committed[name] != text)
    excerpt = "".join(
        line
        for name in drifted
        for line in list(
            difflib.unified_diff(
                committed[name].splitlines(keepends=True),
                expected[name].splitlines(keepends=True),
                fromfile=f"committed/{name}",
                tofile=f"generated/{name}",
                n=1,
            )
        )[:12]
    )
    assert drifted == [], f"{drifted} differ from the models: {FIX}\n{excerpt}"


def test_there_is_one_schema_per_event_type_the_envelope_union_anomalies_and_kpi_records():
    # The 17 event types of DESIGN.md, written out here rather than read from the models.
    types = [
        "order_placed",
        "order_cancelled",
        "refund_issued",
        "shipment_dispatched",
        "shipment_delivered",
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
        "feedback_submitted",
        "fx_rate",
    ]
    assert sorted(render_json_schemas()) == sorted(
        [
            "event.schema.json",
            "anomaly.schema.json",
            "kpi.schema.json",
            *(f"{t}.schema.json" for t in types),
        ]
    )


def schema_of(name: str) -> dict[str, Any]:
    return orjson.loads((COMMITTED_DIR / name).read_bytes())


def nodes(node: object) -> Iterator[dict[str, Any]]:
    """Every JSON object in a schema, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from nodes(item)


def test_every_schema_declares_draft_2020_12_and_no_openapi_discriminator():
    # ajv's strict mode refuses `discriminator`; the envelope dispatches on `type` with if/then.
    for name, text in render_json_schemas().items():
        schema = orjson.loads(text)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        assert not any("discriminator" in node for node in nodes(schema)), name


def string_pattern(event_type: str, field: str) -> str:
    """The `pattern` the JSON Schema of `event_type` gives `field` when it is a string."""
    spec = schema_of(f"{event_type}.schema.json")["properties"][field]
    (pattern,) = [b["pattern"] for b in spec.get("anyOf", [spec]) if b.get("type") == "string"]
    return pattern


def worker_accepts(make_event: Callable[..., bytes], **fields: Any) -> bool:
    try:
        decode_event(make_event(**fields), ValidationLimits(), 2_000_000_000.0)
    except InvalidEvent:
        return False
    return True


# (value, accepted?) decided by hand from the README's contract section.
AMOUNTS = [
    ("12.50", True),
    ("7", True),
    ("0.000001", True),
    ("0.5", True),
    ("999999999999.999999", True),
    ("abc", False),
    ("-5", False),
    ("+5", False),
    ("NaN", False),
    ("Infinity", False),
    ("1e400", False),
    ("1E3", False),
    ("0", False),
    ("0.00", False),
    ("0.0000001", False),
    ("1.1234567", False),
    ("1000000000000", False),
    ("012.5", False),
    ("12.", False),
    (".5", False),
    (" 12.5", False),
    ("1_000", False),
    ("١٢٣", False),
    ("12.50\n", False),
]


@pytest.mark.parametrize(("amount", "valid"), AMOUNTS)
def test_the_schema_and_the_worker_agree_on_string_amounts(make_event, amount, valid):
    pattern = string_pattern("order_placed", "amount")

    # JSON Schema patterns are ECMA-262; this one means the same in Python but for `$`, which
    # Python also matches before a final newline, so the schema's verdict is taken with \Z.
    assert (re.search(pattern.removesuffix("$") + r"\Z", amount) is not None) is valid
    assert worker_accepts(make_event, amount=amount) is valid


@pytest.mark.parametrize(
    ("event_type", "field", "value", "valid"),
    [
        ("inventory_issued", "quantity", "2", True),
        ("inventory_issued", "quantity", "٢", False),
        ("shipment_delivered", "promised_delivery_at", "2099-12-31T23:59:59Z", True),
        ("shipment_delivered", "promised_delivery_at", "2100-01-01T00:00:00Z", False),
        ("shipment_delivered", "promised_delivery_at", "1709294400", False),
        ("shipment_delivered", "occurred_at", "2024-03-01T12:00:00.5+01:00", True),
        ("shipment_delivered", "occurred_at", "2024-03-01 12:00:00Z", False),
        ("shipment_delivered", "occurred_at", "2024-03-01T12:00Z", False),
    ],
)
def test_the_schema_and_the_worker_agree_on_other_strings(
    make_event, event_type, field, value, valid
):
    pattern = string_pattern(event_type, field)

    assert (re.search(pattern, value) is not None) is valid
    assert worker_accepts(make_event, type=event_type, **{field: value}) is valid


def test_a_budget_period_pattern_is_years_2000_to_2099():
    pattern = string_pattern("budget_set", "period")

    assert [
        p for p in ("1999-12", "2000-01", "2099-12", "2100-01", "9999-12") if re.search(pattern, p)
    ] == [
        "2000-01",
        "2099-12",
    ]
