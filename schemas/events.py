"""The event contract: one envelope, one typed model per event type.

Every event published to a kpi-pulse input topic is one JSON object with the envelope fields
(`event_id`, `type`, `occurred_at`, `source`, `schema_version`, `dimensions`) and the typed
fields of its `type` at the top level. Money is a decimal `amount` (send it as a JSON string to
keep every digit) plus an ISO 4217 `currency`. Unknown fields are rejected so that a typo
upstream is caught at the door, not summed as zero.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, TypeAlias

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

SCHEMA_VERSION = 1

Label = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""A dimension value: short, printable, safe as a Prometheus label value."""


def _rfc3339_text(value: object) -> object:
    """Refuse epoch numbers, which pydantic would otherwise accept as datetimes."""
    if isinstance(value, int | float):
        raise ValueError("must be an RFC 3339 string with a UTC offset, not a number")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
"""RFC 3339 date-time with an explicit UTC offset."""

Identifier = Annotated[str, Field(min_length=1, max_length=128)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]
Amount = Annotated[
    Decimal,
    Field(gt=0, max_digits=18, decimal_places=6, allow_inf_nan=False, description="Positive."),
]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=6, allow_inf_nan=False)]


class Dimensions(BaseModel):
    """Where an event belongs. `business_unit` and `region` are required on every event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    business_unit: Label
    region: Label
    channel: Label | None = None
    cost_center: Label | None = None
    initiative_id: Label | None = None


class Envelope(BaseModel):
    """Fields shared by every event type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(description="The event type; selects the typed fields.")
    event_id: Identifier = Field(description="Unique per event; duplicates are dropped.")
    occurred_at: Timestamp = Field(description="RFC 3339 with a UTC offset; event time.")
    source: Identifier = Field(description="The publishing system, e.g. 'oms-eu'.")
    schema_version: Literal[1] = Field(description="Version of this contract.")
    dimensions: Dimensions


class Money(BaseModel):
    """Mixin for events that carry one amount of money."""

    amount: Amount
    currency: CurrencyCode


class OrderPlaced(Envelope, Money):
    """A customer order; its amount counts toward revenue."""

    type: Literal["order_placed"]
    order_id: Identifier
    customer_id: Identifier | None = None
    promised_delivery_at: Timestamp | None = None


class OrderCancelled(Envelope, Money):
    """An order cancelled before fulfilment; its amount is taken off revenue."""

    type: Literal["order_cancelled"]
    order_id: Identifier


class RefundIssued(Envelope, Money):
    """Money given back to a customer; taken off revenue."""

    type: Literal["refund_issued"]
    order_id: Identifier


class InventoryIssued(Envelope, Money):
    """Goods leaving stock at cost: `amount` is the total cost of goods issued (COGS)."""

    type: Literal["inventory_issued"]
    sku: Identifier
    quantity: Quantity
    order_id: Identifier | None = None


class ExpensePosted(Envelope, Money):
    """An operating expense booked to a category (and usually a cost center)."""

    type: Literal["expense_posted"]
    category: Label


class FeedbackSubmitted(Envelope):
    """A survey answer: a CSAT score (1-5), an NPS score (0-10), or both."""

    type: Literal["feedback_submitted"]
    csat_score: Annotated[int, Field(ge=1, le=5)] | None = None
    nps_score: Annotated[int, Field(ge=0, le=10)] | None = None
    order_id: Identifier | None = None

    @model_validator(mode="after")
    def _has_a_score(self) -> FeedbackSubmitted:
        if self.csat_score is None and self.nps_score is None:
            raise ValueError("feedback needs csat_score, nps_score or both")
        return self


Event: TypeAlias = Annotated[
    OrderPlaced
    | OrderCancelled
    | RefundIssued
    | InventoryIssued
    | ExpensePosted
    | FeedbackSubmitted,
    Field(discriminator="type"),
]

EVENT_MODELS: dict[str, type[Envelope]] = {
    "order_placed": OrderPlaced,
    "order_cancelled": OrderCancelled,
    "refund_issued": RefundIssued,
    "inventory_issued": InventoryIssued,
    "expense_posted": ExpensePosted,
    "feedback_submitted": FeedbackSubmitted,
}
EVENT_TYPES: frozenset[str] = frozenset(EVENT_MODELS)

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
"""Validates a decoded JSON object into the model of its `type`."""
