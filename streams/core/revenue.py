"""Revenue: sum of order amount - cancellations - refunds, in the reporting currency,
per (business_unit, region) and event-time tumbling window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

from schemas import Envelope, OrderCancelled, OrderPlaced, RefundIssued
from streams.core.money import FxTable

Series = tuple[str, str]
"""(business_unit, region)."""

ZERO = Decimal(0)


def revenue_delta(event: Envelope, fx: FxTable) -> Decimal | None:
    """The event's signed contribution to revenue, or None when it does not touch revenue.

    Raises `InvalidEvent("unknown_currency")` for a currency without a rate.
    """
    if isinstance(event, OrderPlaced):
        return fx.to_reporting(event.amount, event.currency)
    if isinstance(event, OrderCancelled | RefundIssued):
        return -fx.to_reporting(event.amount, event.currency)
    return None


class RevenueWindows:
    """Revenue sums of one source partition, indexed by window start then series."""

    def __init__(self) -> None:
        self.by_window: dict[int, dict[Series, Decimal]] = {}

    def add(self, window_start: int, series: Series, delta: Decimal) -> None:
        sums = self.by_window.get(window_start)
        if sums is None:
            sums = self.by_window[window_start] = {}
        sums[series] = sums.get(series, ZERO) + delta

    def get(self, window_start: int, series: Series) -> Decimal:
        return self.by_window.get(window_start, {}).get(series, ZERO)

    def set(self, window_start: int, series: Series, value: Decimal) -> None:
        self.by_window.setdefault(window_start, {})[series] = value

    def drop_before(self, window_start: int) -> None:
        for start in [s for s in self.by_window if s < window_start]:
            del self.by_window[start]

    def series(self) -> Iterator[Series]:
        for sums in self.by_window.values():
            yield from sums


def merge_window(parts: Iterable[RevenueWindows], window_start: int) -> dict[Series, Decimal]:
    """Total revenue of one window across partitions; every series still retained anywhere
    appears, with zero where it had no revenue in that window (a quiet key gets a value too)."""
    parts = list(parts)
    totals: dict[Series, Decimal] = dict.fromkeys(
        (series for part in parts for series in part.series()), ZERO
    )
    for part in parts:
        for series, value in part.by_window.get(window_start, {}).items():
            totals[series] += value
    return totals
