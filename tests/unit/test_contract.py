"""The committed JSON Schema files are exactly what the pydantic models generate."""

from __future__ import annotations

import difflib
from pathlib import Path

from schemas import render_json_schemas

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


def test_there_is_one_schema_per_event_type_and_one_for_the_envelope_union():
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
        ["event.schema.json", "anomaly.schema.json", *(f"{t}.schema.json" for t in types)]
    )
