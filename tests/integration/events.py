"""Hand-built events for integration tests (bytes exactly as a publisher would send them)."""

from __future__ import annotations

from typing import Any

import orjson

DAY = "2026-01-05"


def at(clock: str) -> str:
    """`"10:00:10"` → an RFC 3339 time on the test day, UTC."""
    return f"{DAY}T{clock}+00:00"


def event(
    event_id: str,
    event_type: str,
    clock: str,
    *,
    bu: str = "retail",
    region: str = "emea",
    amount: str | None = None,
    currency: str = "EUR",
    **fields: Any,
) -> bytes:
    body: dict[str, Any] = {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": at(clock),
        "source": "it",
        "schema_version": 1,
        "dimensions": {"business_unit": bu, "region": region},
    }
    if amount is not None:
        body |= {"amount": amount, "currency": currency}
    if event_type in {"order_placed", "order_cancelled", "refund_issued"}:
        body.setdefault("order_id", f"order-{event_id}")
    body |= fields
    return orjson.dumps(body)


def order(event_id: str, clock: str, amount: str, **kw: Any) -> bytes:
    return event(event_id, "order_placed", clock, amount=amount, **kw)
