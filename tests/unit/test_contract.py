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
    assert sorted(render_json_schemas()) == [
        "event.schema.json",
        "expense_posted.schema.json",
        "feedback_submitted.schema.json",
        "inventory_issued.schema.json",
        "order_cancelled.schema.json",
        "order_placed.schema.json",
        "refund_issued.schema.json",
    ]
