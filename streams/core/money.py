"""Conversion of amounts to the reporting currency, to the cent."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from streams.errors import InvalidEvent

CENT = Decimal("0.01")


class FxTable:
    """Static rates: units of the reporting currency per one unit of another currency.

    Each converted amount is rounded to the cent (banker's rounding) before it is summed, as a
    ledger books it, so totals reconcile with the finance system to the cent.
    """

    def __init__(self, reporting_currency: str, rates: Mapping[str, Decimal]) -> None:
        self.reporting_currency = reporting_currency
        self._rates = {**rates, reporting_currency: Decimal(1)}

    def to_reporting(self, amount: Decimal, currency: str) -> Decimal:
        """Return `amount` in the reporting currency, rounded to the cent.

        Raises `InvalidEvent("unknown_currency")` when no rate is known.
        """
        rate = self._rates.get(currency)
        if rate is None:
            raise InvalidEvent(
                "unknown_currency", f"no rate from {currency} to {self.reporting_currency}"
            )
        return (amount * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)
