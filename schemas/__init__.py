"""The kpi-pulse event contract (imports nothing from `streams`)."""

from schemas.contract import SCHEMA_DIR, render_json_schemas, write_json_schemas
from schemas.events import (
    EVENT_MODELS,
    EVENT_TYPES,
    SCHEMA_VERSION,
    Dimensions,
    Envelope,
    Event,
    ExpensePosted,
    FeedbackSubmitted,
    InventoryIssued,
    OrderCancelled,
    OrderPlaced,
    RefundIssued,
    event_adapter,
)

__all__ = [
    "EVENT_MODELS",
    "EVENT_TYPES",
    "SCHEMA_DIR",
    "SCHEMA_VERSION",
    "Dimensions",
    "Envelope",
    "Event",
    "ExpensePosted",
    "FeedbackSubmitted",
    "InventoryIssued",
    "OrderCancelled",
    "OrderPlaced",
    "RefundIssued",
    "event_adapter",
    "render_json_schemas",
    "write_json_schemas",
]
