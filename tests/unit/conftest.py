"""Factories for the unit tests: events as bytes or models, and core state with small settings.

Times are epoch seconds. `T0` = 2024-03-01T12:00:00Z = 1_709_294_400, a whole minute
(60 * 28_488_240) and a whole hour (3600 * 474_804), so window arithmetic in the tests stays
readable as `T0 + offset`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas import Envelope, event_adapter
from streams.core import (
    FxTable,
    PartitionState,
    StateConfig,
    Windows,
    WorkerState,
    compile_catalog,
)

T0 = 1_709_294_400

STATIC_RATES = {"USD": Decimal("0.9"), "GBP": Decimal("1.25")}
"""Hand-written rates, EUR per unit: 1 USD = 0.9 EUR, 1 GBP = 1.25 EUR."""
FX = FxTable("EUR", STATIC_RATES)
CATALOG = compile_catalog()

# The typed fields that make each event type valid on top of the envelope.
TYPE_FIELDS: dict[str, dict[str, Any]] = {
    "order_placed": {"amount": "10.00", "currency": "EUR", "order_id": "o-1"},
    "order_cancelled": {"amount": "10.00", "currency": "EUR", "order_id": "o-1"},
    "refund_issued": {"amount": "10.00", "currency": "EUR", "order_id": "o-1"},
    "inventory_issued": {"amount": "4.00", "currency": "EUR", "sku": "sku-1", "quantity": "2"},
    "expense_posted": {"amount": "7.00", "currency": "EUR", "category": "travel"},
    "shipment_delivered": {
        "order_id": "o-1",
        "shipment_id": "s-1",
        "promised_delivery_at": "2024-03-02T12:00:00+00:00",
    },
    "feedback_submitted": {"csat_score": 4},
}

PayloadFactory = Callable[..., dict[str, Any]]
EventFactory = Callable[..., bytes]
EnvelopeFactory = Callable[..., Envelope]


def iso(timestamp: float) -> str:
    """RFC 3339 with a +00:00 offset, to the microsecond."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


@pytest.fixture
def make_payload() -> PayloadFactory:
    """`make_payload(**overrides)` -> a valid event as a dict (an `order_placed` by default).

    `type=` picks the typed fields of another event type, `at=` sets `occurred_at` from epoch
    seconds, `business_unit=`/`region=` set the dimensions, `drop=(...)` removes default top-level
    keys, and any other keyword replaces (or adds) that top-level field after the drop. Each call
    gets a new event_id.
    """
    ids = itertools.count(1)

    def make(
        *,
        at: float = T0,
        business_unit: str = "retail",
        region: str = "eu",
        drop: Iterable[str] = (),
        **overrides: Any,
    ) -> dict[str, Any]:
        event_type = overrides.get("type", "order_placed")
        # The type may be deliberately broken (None, a list...): fall back to order fields.
        typed = TYPE_FIELDS.get(event_type if isinstance(event_type, str) else "order_placed")
        payload: dict[str, Any] = {
            "type": event_type,
            "event_id": f"evt-{next(ids)}",
            "occurred_at": iso(at),
            "source": "oms-eu",
            "schema_version": 1,
            "dimensions": {"business_unit": business_unit, "region": region}
            | ({"cost_center": "cc-1"} if event_type in ("expense_posted", "budget_set") else {}),
            **(typed or TYPE_FIELDS["order_placed"]),
        }
        for key in drop:
            del payload[key]
        payload.update(overrides)
        return payload

    return make


@pytest.fixture
def make_event(make_payload: PayloadFactory) -> EventFactory:
    """`make_event(**overrides)` -> the JSON bytes of `make_payload(**overrides)`."""

    def make(**overrides: Any) -> bytes:
        return orjson.dumps(make_payload(**overrides))

    return make


@pytest.fixture
def make_envelope(make_payload: PayloadFactory) -> EnvelopeFactory:
    """`make_envelope(**overrides)` -> the validated model, for feeding the core directly."""

    def make(**overrides: Any) -> Envelope:
        return event_adapter.validate_python(make_payload(**overrides))

    return make


@pytest.fixture
def make_state_config() -> Callable[..., StateConfig]:
    """Small explicit settings: 60 s windows, 5 s watermark delay, 30 s lateness, 3 retained
    windows, room for 1000 ids, the hand-written `FX` table."""

    def make(**overrides: Any) -> StateConfig:
        values: dict[str, Any] = {
            "catalog": CATALOG,
            "windows": Windows.for_timezone(ZoneInfo("UTC")),
            "watermark_delay": 5.0,
            "allowed_lateness": 30.0,
            "dedupe_max_entries": 1000,
            "retained_windows": 3,
            "fx": FxTable("EUR", STATIC_RATES),
            **overrides,
        }
        return StateConfig(**values)

    return make


@pytest.fixture
def make_state(make_state_config: Callable[..., StateConfig]) -> Callable[..., WorkerState]:
    """`make_state(**config_overrides)` -> an empty `WorkerState`."""

    def make(**overrides: Any) -> WorkerState:
        return WorkerState(make_state_config(**overrides))

    return make


@pytest.fixture
def make_partition(
    make_state_config: Callable[..., StateConfig],
) -> Callable[..., PartitionState]:
    """`make_partition(**config_overrides)` -> an empty `PartitionState`, as a worker makes it."""

    def make(**overrides: Any) -> PartitionState:
        return WorkerState(make_state_config(**overrides)).new_partition()

    return make
