"""The event contract: one envelope, one typed model per event type.

Every event published to a kpi-pulse input topic is one JSON object with the envelope fields
(`event_id`, `type`, `occurred_at`, `source`, `schema_version`, `dimensions`) and the typed
fields of its `type` at the top level. Money is a decimal `amount` (send it as a JSON string to
keep every digit) plus an ISO 4217 `currency`. Unknown fields are rejected so that a typo
upstream is caught at the door, not summed as zero.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from schemas.strict import PlainDecimal, Rfc3339, WholeNumber

SCHEMA_VERSION = 1

Label = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""A dimension value: short, printable, safe as a Prometheus label value."""


YEARS = "20[0-9]{2}"
"""The years a `period` or a promise date may name: 2000 (as `EARLIEST_EVENT_TIME` in
`streams.core.validation`) to 2099, far beyond any budget or delivery horizon yet far inside what
the core's calendar arithmetic handles in any time zone (year 0 or 10000 would raise there)."""

Timestamp = Annotated[
    datetime,
    Rfc3339("RFC 3339 date-time with a UTC offset, e.g. 2026-11-22T10:00:00+00:00."),
]
"""Any year here: `decode_event` rejects an implausible `occurred_at` as
`timestamp_out_of_range`, a reason of its own."""
PlannedTimestamp = Annotated[
    datetime,
    Rfc3339(
        "RFC 3339 date-time with a UTC offset, in the years 2000-2099.",
        years=YEARS,
        years_text="2000-2099",
    ),
]
"""A promised or due time: bounded like `period`."""

Identifier = Annotated[str, Field(min_length=1, max_length=128)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]
Amount = Annotated[
    Decimal,
    PlainDecimal(
        12,
        6,
        "Positive; up to 12 digits before the point and 6 after. Send a JSON string such as "
        '"129.90" to keep every digit.',
    ),
]
Quantity = Annotated[
    Decimal, PlainDecimal(12, 6, "Positive; up to 12 digits before the point and 6 after.")
]
Rate = Annotated[
    Decimal, PlainDecimal(12, 12, "Positive; up to 12 digits before the point and 12 after.")
]
Period = Annotated[
    str,
    Field(
        pattern=f"^(FY{YEARS}-P|{YEARS}-)(0[1-9]|1[0-2])$",
        description="A calendar month, YYYY-MM, or a fiscal period, FYYYYY-PNN (needs "
        "PULSE_FISCAL_CALENDAR), in the years 2000-2099.",
    ),
]
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)
"""Strict: no string for a number, no number for a string, no `true` for 1. The typed fields
above say which JSON forms they take."""


class Dimensions(BaseModel):
    """Where a business event belongs: `business_unit` and `region` always; some event types
    also require `cost_center` or `initiative_id`."""

    model_config = _STRICT

    business_unit: Label
    region: Label
    channel: Label | None = None
    cost_center: Label | None = None
    initiative_id: Label | None = None


class Envelope(BaseModel):
    """Fields shared by every event type."""

    model_config = _STRICT

    type: str = Field(description="The event type; selects the typed fields.")
    event_id: Identifier = Field(description="Unique per event; duplicates are dropped.")
    occurred_at: Timestamp = Field(description="RFC 3339 with a UTC offset; event time.")
    source: Identifier = Field(description="The publishing system, e.g. 'oms-eu'.")
    schema_version: Annotated[Literal[1], WholeNumber()] = Field(
        description="Version of this contract."
    )


class BusinessEvent(Envelope):
    """An event that belongs to a business unit and region (every type but `fx_rate`)."""

    dimensions: Dimensions


class NeedsDimensions(BusinessEvent):
    """A business event type that also requires some optional dimensions."""

    _required_dimensions: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _has_required_dimensions(self) -> Self:
        missing = [d for d in self._required_dimensions if getattr(self.dimensions, d) is None]
        if missing:
            raise ValueError(f"{self.type} needs dimensions.{', dimensions.'.join(missing)}")
        return self


class Money(BaseModel):
    """Mixin for events that carry one amount of money."""

    model_config = _STRICT

    amount: Amount
    currency: CurrencyCode


class OrderPlaced(BusinessEvent, Money):
    """A customer order; its amount counts toward revenue."""

    type: Literal["order_placed"]
    order_id: Identifier
    customer_id: Identifier | None = None
    promised_delivery_at: PlannedTimestamp | None = None


class OrderCancelled(BusinessEvent, Money):
    """An order cancelled before fulfilment; its amount is taken off revenue."""

    type: Literal["order_cancelled"]
    order_id: Identifier


class RefundIssued(BusinessEvent, Money):
    """Money given back to a customer; taken off revenue."""

    type: Literal["refund_issued"]
    order_id: Identifier


class InventoryIssued(BusinessEvent, Money):
    """Goods leaving stock at cost: `amount` is the total cost of goods issued (COGS)."""

    type: Literal["inventory_issued"]
    sku: Identifier
    quantity: Quantity
    order_id: Identifier | None = None


class ExpensePosted(NeedsDimensions, Money):
    """An operating expense booked to a category (and usually a cost center)."""

    type: Literal["expense_posted"]
    category: Label

    _required_dimensions = ("cost_center",)


class FeedbackSubmitted(BusinessEvent):
    """A survey answer: a CSAT score (1-5), an NPS score (0-10), or both."""

    type: Literal["feedback_submitted"]
    csat_score: Annotated[int, Field(ge=1, le=5), WholeNumber()] | None = None
    nps_score: Annotated[int, Field(ge=0, le=10), WholeNumber()] | None = None
    order_id: Identifier | None = None

    @model_validator(mode="after")
    def _has_a_score(self) -> FeedbackSubmitted:
        if self.csat_score is None and self.nps_score is None:
            raise ValueError("feedback needs csat_score, nps_score or both")
        return self


class ShipmentDispatched(BusinessEvent):
    """An order's shipment left the warehouse."""

    type: Literal["shipment_dispatched"]
    order_id: Identifier
    shipment_id: Identifier
    carrier: Label | None = None


class ShipmentDelivered(BusinessEvent):
    """An order's shipment reached the customer; on time when `occurred_at` is at or before
    `promised_delivery_at`."""

    type: Literal["shipment_delivered"]
    order_id: Identifier
    shipment_id: Identifier
    promised_delivery_at: PlannedTimestamp


class InventoryReceived(BusinessEvent, Money):
    """Goods entering stock: `amount` is their total cost (adds to inventory value)."""

    type: Literal["inventory_received"]
    sku: Identifier
    quantity: Quantity


class InvoiceIssued(BusinessEvent, Money):
    """A customer invoice (adds to accounts receivable)."""

    type: Literal["invoice_issued"]
    invoice_id: Identifier
    customer_id: Identifier | None = None
    due_at: PlannedTimestamp | None = None


class PaymentReceived(BusinessEvent, Money):
    """A customer payment against an invoice (takes off accounts receivable)."""

    type: Literal["payment_received"]
    invoice_id: Identifier


class BillReceived(BusinessEvent, Money):
    """A supplier bill (adds to accounts payable)."""

    type: Literal["bill_received"]
    bill_id: Identifier
    supplier_id: Identifier | None = None
    due_at: PlannedTimestamp | None = None


class BillPaid(BusinessEvent, Money):
    """A payment of a supplier bill (takes off accounts payable)."""

    type: Literal["bill_paid"]
    bill_id: Identifier


class BudgetSet(NeedsDimensions, Money):
    """The OpEx budget of a cost center for one calendar month (`period`, e.g. "2026-11", in the
    business time zone) or, with a fiscal calendar, one fiscal period (e.g. "FY2026-P03"). A
    later `budget_set` (by `occurred_at`) for the same cost center and period replaces the
    earlier one."""

    type: Literal["budget_set"]
    period: Period

    _required_dimensions = ("cost_center",)


class InvestmentMade(NeedsDimensions, Money):
    """Money spent on an initiative (`dimensions.initiative_id`)."""

    type: Literal["investment_made"]

    _required_dimensions = ("initiative_id",)


class BenefitRealized(NeedsDimensions, Money):
    """A measured benefit of an initiative (`dimensions.initiative_id`)."""

    type: Literal["benefit_realized"]

    _required_dimensions = ("initiative_id",)


class FxRate(Envelope):
    """From `occurred_at` on, one unit of `currency` is worth `rate` units of `quote_currency`.
    Rates into the reporting currency are used for conversion; others are accepted and ignored."""

    type: Literal["fx_rate"]
    currency: CurrencyCode
    quote_currency: CurrencyCode
    rate: Rate


Event: TypeAlias = Annotated[
    OrderPlaced
    | OrderCancelled
    | RefundIssued
    | ShipmentDispatched
    | ShipmentDelivered
    | InventoryReceived
    | InventoryIssued
    | InvoiceIssued
    | PaymentReceived
    | BillReceived
    | BillPaid
    | ExpensePosted
    | BudgetSet
    | InvestmentMade
    | BenefitRealized
    | FeedbackSubmitted
    | FxRate,
    Field(discriminator="type"),
]

EVENT_MODELS: dict[str, type[Envelope]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        OrderPlaced,
        OrderCancelled,
        RefundIssued,
        ShipmentDispatched,
        ShipmentDelivered,
        InventoryReceived,
        InventoryIssued,
        InvoiceIssued,
        PaymentReceived,
        BillReceived,
        BillPaid,
        ExpensePosted,
        BudgetSet,
        InvestmentMade,
        BenefitRealized,
        FeedbackSubmitted,
        FxRate,
    )
}
EVENT_TYPES: frozenset[str] = frozenset(EVENT_MODELS)

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
"""Validates a decoded JSON object into the model of its `type`."""
