"""JSON Schema files generated from the pydantic models, for publishers in other languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from schemas.anomaly import ANOMALY_SCHEMA_VERSION, Anomaly
from schemas.events import EVENT_MODELS, SCHEMA_VERSION, event_adapter

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


def _dump(schema: dict[str, Any]) -> str:
    schema = _sorted_required({"$schema": DIALECT, **schema})
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def render_json_schemas() -> dict[str, str]:
    """Return {file name: JSON text} for the envelope union, each event type and the anomaly
    message.

    Deterministic (sorted keys, fixed indentation) so that the committed files can be diffed.
    """
    files: dict[str, str] = {}
    union = event_adapter.json_schema()
    # pydantic adds OpenAPI's `discriminator`, which JSON Schema lacks and ajv's strict mode
    # refuses; `oneOf` alone picks the same branch, since each fixes `type` with a `const`.
    del union["discriminator"]
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
    return files
