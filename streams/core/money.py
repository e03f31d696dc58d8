"""Conversion of amounts to the reporting currency, at the rate in force, to the cent."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from streams.errors import InvalidEvent

CENT = Decimal("0.01")
ONE = Decimal(1)


class FxTable:
    """Rates into the reporting currency: from `fx_rate` events (a time series per currency,
    the one in force at an instant being the latest at or before it), else a static table.

    Each converted amount is rounded to the cent (banker's rounding) before it is summed, as a
    ledger books it, so totals reconcile with the finance system to the cent.
    """

    def __init__(self, reporting_currency: str, static_rates: Mapping[str, Decimal]) -> None:
        self.reporting_currency = reporting_currency
        self._static = dict(static_rates)
        self._times: dict[str, list[float]] = {}
        self._rates: dict[str, list[Decimal]] = {}

    def set_rate(self, currency: str, effective_from: float, rate: Decimal) -> bool:
        """Record a rate from an `fx_rate` event; returns False if it was already known."""
        times = self._times.setdefault(currency, [])
        rates = self._rates.setdefault(currency, [])
        index = bisect.bisect_left(times, effective_from)
        if index < len(times) and times[index] == effective_from:
            changed = rates[index] != rate
            rates[index] = rate
            return changed
        times.insert(index, effective_from)
        rates.insert(index, rate)
        return True

    def learned(self) -> list[tuple[str, float, str]]:
        """Every rate set by `set_rate`, as (currency, effective from, rate) (JSON-ready)."""
        return [
            (currency, when, str(rate))
            for currency, times in sorted(self._times.items())
            for when, rate in zip(times, self._rates[currency], strict=True)
        ]

    def rate_at(self, currency: str, timestamp: float) -> Decimal | None:
        if currency == self.reporting_currency:
            return ONE
        times = self._times.get(currency)
        if times:
            index = bisect.bisect_right(times, timestamp) - 1
            if index >= 0:
                return self._rates[currency][index]
        return self._static.get(currency)

    def to_reporting(self, amount: Decimal, currency: str, timestamp: float) -> Decimal:
        """`amount` in the reporting currency at the rate in force at `timestamp`, to the cent.

        Raises `InvalidEvent("unknown_currency")` when no rate is known.
        """
        if currency == self.reporting_currency:  # the rate is 1: the same, one call less
            return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
        rate = self.rate_at(currency, timestamp)
        if rate is None:
            raise InvalidEvent(
                "unknown_currency", f"no rate from {currency} to {self.reporting_currency}"
            )
        return (amount * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)
