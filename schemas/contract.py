"""JSON Schema files generated from the pydantic models, for publishers in other languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from schemas.anomaly import ANOMALY_SCHEMA_VERSION, Anomaly
from schemas.events import EVENT_MODELS, SCHEMA_VERSION, event_adapter
from schemas.kpi_record import KPI_RECORD_VERSION, KpiRecord

SCHEMA_DIR = Path(__file__).parent / "json"
_BASE_ID = "https://kpi-pulse.dev/schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The `$schema` of every file: pydantic writes JSON Schema 2020-12 but does not say so."""


def _sorted_required(node: Any) -> Any:
    """Sort every `required` list: its order carries no meaning and varies across pydantic."""
    if isinstance(node, dict):
        return {
            k: sorted(v) if k == "required" and isinstance(v, list) else _sorted_required(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_sorted_required(item) for item in node]
    return node


NO_NEWLINE = {"type": "string", "pattern": "\\n"}
"""Strings with a line feed, which no pattern of the contract allows; see `_end_means_end`."""


def _end_means_end(node: Any) -> Any:
    r"""Give every `pattern` ending in `$` a `not` refusing a line feed.

    JSON Schema patterns are ECMA-262, where `$` is the end of the string; python-jsonschema
    runs them with Python's `re`, where `$` also matches before a final "\n", so "retail\n"
    would pass a label's pattern there while the worker (and ajv, and Go's RE2) refuse it. A
    look-ahead or `\Z` would fix the pattern for one engine and break it for another (RE2 has
    no look-around); `not` with an unanchored pattern means the same everywhere.
    """
    if isinstance(node, dict):
        out = {k: _end_means_end(v) for k, v in node.items()}
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("$") and "not" not in node:
            out["not"] = NO_NEWLINE
        return out
    if isinstance(node, list):
        return [_end_means_end(item) for item in node]
    return node


def _dump(schema: dict[str, Any]) -> str:
    schema = _sorted_required(_end_means_end({"$schema": DIALECT, **schema}))
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def _dispatch_on_type(union: dict[str, Any]) -> dict[str, Any]:
    """The envelope union as `type` in the known types, then the one type's schema (`if`/`then`).

    pydantic writes `oneOf` plus OpenAPI's `discriminator`, which JSON Schema lacks and ajv's
    strict mode refuses. `oneOf` alone would accept the same events, but an event failing it
    fails all 17 branches, and validators report all of them ("must have required property
    'amount'" from bill_paid for an order_placed whose amount is "-5"). With `if`/`then` only
    the branch of the event's own `type` is applied, so the errors are about that type.
    """
    mapping: dict[str, str] = union["discriminator"]["mapping"]
    branches = [
        {
            "if": {"type": "object", "properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"$ref": ref},
        }
        for name, ref in sorted(mapping.items())
    ]
    return {
        "$defs": union["$defs"],
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"enum": sorted(mapping), "description": "The event type; selects the fields."}
        },
        "allOf": branches,
    }


def render_json_schemas() -> dict[str, str]:
    """Return {file name: JSON text} for the envelope union, each event type, the anomaly
    message and the KPI record.

    Deterministic (sorted keys, fixed indentation) so that the committed files can be diffed.
    """
    files: dict[str, str] = {}
    union = _dispatch_on_type(event_adapter.json_schema())
    union["$id"] = f"{_BASE_ID}/v{SCHEMA_VERSION}/event.schema.json"
    union["title"] = "kpi-pulse event"
    files["event.schema.json"] = _dump(union)
    for name, model in sorted(EVENT_MODELS.items()):
        schema = model.model_json_schema()
        schema["$id"] = f"{_BASE_ID}/v{SCHEMA_VERSION}/{name}.schema.json"
        files[f"{name}.schema.json"] = _dump(schema)
    anomaly = Anomaly.model_json_schema()
    anomaly["$id"] = f"{_BASE_ID}/anomaly/v{ANOMALY_SCHEMA_VERSION}/anomaly.schema.json"
    anomaly["title"] = "kpi-pulse anomaly"
    files["anomaly.schema.json"] = _dump(anomaly)
    kpi = KpiRecord.model_json_schema()
    kpi["$id"] = f"{_BASE_ID}/kpi/v{KPI_RECORD_VERSION}/kpi.schema.json"
    kpi["title"] = "kpi-pulse KPI record"
    files["kpi.schema.json"] = _dump(kpi)
    return files
