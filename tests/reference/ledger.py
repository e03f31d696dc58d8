"""The reference ledger: a hand-built JSON-lines file that exercises every rule of
docs/kpi-semantics.md, for `pulse backtest` to be checked against `expected.py`.

The data runs from Friday 2026-10-23 to Monday 2026-11-02 in the business time zone
Europe/Berlin, across the end of summer time on Sunday 2026-10-25 (03:00 CEST -> 02:00 CET, a
25-hour business day). Lines are in arrival order, mostly also in event-time order: the watermark
is the greatest `occurred_at` seen minus 5 s and the allowed lateness 60 s, so only the events
marked "late" below are late, and those marked "out of order" are behind the newest event but
still counted.

Money: EUR, GBP and USD. USD and GBP convert at the static table (USD=0.90, GBP=1.15) until
their first `fx_rate`; CHF has no rate at all. Amounts in comments are the converted EUR cents.

Times are written "MM-DD hh:mm:ss" for 2026-MM-DDThh:mm:ssZ (UTC); a full RFC 3339 string with
an offset is used where the local time is the point. Event ids are `ev-NNNN` in order of
creation, so they differ from line numbers once invalid lines and resent duplicates come in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

SETTINGS_ENV: dict[str, str] = {
    "PULSE_REPORTING_CURRENCY": "EUR",
    "PULSE_BUSINESS_TIMEZONE": "Europe/Berlin",
    "PULSE_WATERMARK_DELAY_SECONDS": "5",
    "PULSE_ALLOWED_LATENESS_SECONDS": "60",
    "PULSE_FX_RATES": "USD=0.90,GBP=1.15",
    "PULSE_MAX_FUTURE_SKEW_SECONDS": "300",
    "PULSE_RESTATEMENT_DAYS": "1",
}
"""The environment of the reference run (everything else at its default)."""

Event = dict[str, Any]
Where = dict[str, str]

# The four (business_unit, region) series. retail/de trades in EUR, retail/uk in GBP and
# wholesale/us in USD; corp/de only carries expenses, budgets, one bill and an initiative.
DE: Where = {"business_unit": "retail", "region": "de"}
UK: Where = {"business_unit": "retail", "region": "uk"}
US: Where = {"business_unit": "wholesale", "region": "us"}
CORP: Where = {"business_unit": "corp", "region": "de"}


# --- event builders: one per event type, fields named as in schemas/events.py ------------------


def _ts(at: str) -> str:
    """'10-23 08:00:00' -> '2026-10-23T08:00:00Z'; full RFC 3339 strings pass through."""
    return at if "T" in at else f"2026-{at[:5]}T{at[6:]}Z"


def _event(type_: str, at: str, where: Where | None, source: str, **fields: Any) -> Event:
    event: Event = {"type": type_, "occurred_at": _ts(at), "source": source, "schema_version": 1}
    if where is not None:
        event["dimensions"] = dict(where)
    event.update({name: value for name, value in fields.items() if value is not None})
    return event


def _money(money: str) -> dict[str, str]:
    """'11.45 USD' -> amount and currency fields (the amount stays a JSON string)."""
    amount, currency = money.split()
    return {"amount": amount, "currency": currency}


def order(
    at: str,
    where: Where,
    order_id: str,
    money: str,
    *,
    due: str | None = None,
    channel: str | None = None,
) -> Event:
    dims = {**where, "channel": channel} if channel else where
    promised = _ts(due) if due else None
    return _event(
        "order_placed",
        at,
        dims,
        "oms",
        order_id=order_id,
        promised_delivery_at=promised,
        **_money(money),
    )


def cancel(at: str, where: Where, order_id: str, money: str) -> Event:
    return _event("order_cancelled", at, where, "oms", order_id=order_id, **_money(money))


def refund(at: str, where: Where, order_id: str, money: str) -> Event:
    return _event("refund_issued", at, where, "oms", order_id=order_id, **_money(money))


def dispatch(at: str, where: Where, order_id: str, carrier: str | None = None) -> Event:
    shipment = f"S-{order_id}"
    return _event(
        "shipment_dispatched",
        at,
        where,
        "tms",
        order_id=order_id,
        shipment_id=shipment,
        carrier=carrier,
    )


def deliver(at: str, where: Where, order_id: str, due: str) -> Event:
    shipment = f"S-{order_id}"
    return _event(
        "shipment_delivered",
        at,
        where,
        "tms",
        order_id=order_id,
        shipment_id=shipment,
        promised_delivery_at=_ts(due),
    )


def stock_in(at: str, where: Where, sku: str, quantity: str, money: str) -> Event:
    return _event(
        "inventory_received", at, where, "wms", sku=sku, quantity=quantity, **_money(money)
    )


def stock_out(
    at: str, where: Where, sku: str, quantity: str, money: str, *, order_id: str | None = None
) -> Event:
    return _event(
        "inventory_issued",
        at,
        where,
        "wms",
        sku=sku,
        quantity=quantity,
        order_id=order_id,
        **_money(money),
    )


def invoice(at: str, where: Where, invoice_id: str, money: str) -> Event:
    return _event("invoice_issued", at, where, "erp", invoice_id=invoice_id, **_money(money))


def payment(at: str, where: Where, invoice_id: str, money: str) -> Event:
    return _event("payment_received", at, where, "erp", invoice_id=invoice_id, **_money(money))


def bill(at: str, where: Where, bill_id: str, money: str) -> Event:
    return _event("bill_received", at, where, "erp", bill_id=bill_id, **_money(money))


def bill_paid(at: str, where: Where, bill_id: str, money: str) -> Event:
    return _event("bill_paid", at, where, "erp", bill_id=bill_id, **_money(money))


def expense(at: str, where: Where, cost_center: str, category: str, money: str) -> Event:
    dims = {**where, "cost_center": cost_center}
    return _event("expense_posted", at, dims, "erp", category=category, **_money(money))


def budget(at: str, cost_center: str, period: str, money: str) -> Event:
    dims = {**CORP, "cost_center": cost_center}
    return _event("budget_set", at, dims, "fpa", period=period, **_money(money))


def invest(at: str, where: Where, initiative: str, money: str) -> Event:
    dims = {**where, "initiative_id": initiative}
    return _event("investment_made", at, dims, "fpa", **_money(money))


def benefit(at: str, where: Where, initiative: str, money: str) -> Event:
    dims = {**where, "initiative_id": initiative}
    return _event("benefit_realized", at, dims, "fpa", **_money(money))


def feedback(at: str, where: Where, *, csat: int | None = None, nps: int | None = None) -> Event:
    return _event("feedback_submitted", at, where, "survey", csat_score=csat, nps_score=nps)


def fx(at: str, currency: str, rate: str, quote: str = "EUR") -> Event:
    return _event(
        "fx_rate", at, None, "fx-feed", currency=currency, quote_currency=quote, rate=rate
    )


class Ledger:
    """Collects the lines in arrival order."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.created = 0

    def _stamp(self, event: Event) -> Event:
        self.created += 1
        return {"event_id": f"ev-{self.created:04d}", **event}

    def add(self, event: Event) -> Event:
        stamped = self._stamp(event)
        self.lines.append(orjson.dumps(stamped))
        return stamped

    def resend(self, event: Event) -> None:
        """The same bytes again (same event_id): a duplicate."""
        self.lines.append(orjson.dumps(event))

    def raw(self, line: bytes) -> None:
        self.lines.append(line)

    def broken(self, event: Event, drop: Iterable[str] = (), **changes: Any) -> None:
        """An event made invalid on purpose: keys dropped, fields replaced."""
        stamped = self._stamp(event)
        for name in drop:
            del stamped[name]
        stamped.update(changes)
        self.lines.append(orjson.dumps(stamped))


# --- Friday 2026-10-23 (CEST; business day 10-22 22:00Z .. 10-23 22:00Z) -----------------------


def _opening_balances(led: Ledger) -> None:
    # AR, AP and inventory for each trading series on day one, so that every series with revenue
    # or COGS has all three balances whenever its DSO/DPO/DIO are due. No fx_rate has arrived
    # yet: GBP and USD convert at the static table (GBP 1.15, USD 0.90).
    led.add(stock_in("10-23 08:00:00", DE, "sku-a", "100", "1000.00 EUR"))
    led.add(stock_in("10-23 08:00:10", UK, "sku-b", "50", "800.00 GBP"))  # 920.00
    led.add(stock_in("10-23 08:00:20", US, "sku-c", "200", "1500.00 USD"))  # 1350.00
    led.add(invoice("10-23 08:01:00", DE, "inv-de-1", "300.00 EUR"))
    led.add(invoice("10-23 08:01:10", UK, "inv-uk-1", "200.00 GBP"))  # 230.00
    led.add(invoice("10-23 08:01:20", US, "inv-us-1", "500.00 USD"))  # 450.00
    led.add(bill("10-23 08:02:00", DE, "bill-de-1", "400.00 EUR"))
    led.add(bill("10-23 08:02:10", UK, "bill-uk-1", "100.00 GBP"))  # 115.00
    led.add(bill("10-23 08:02:20", US, "bill-us-1", "250.00 USD"))  # 225.00
    # October budgets (sales in USD at the static rate: 900.00) and a first "crm" investment.
    led.add(budget("10-23 08:03:00", "ops", "2026-10", "500.00 EUR"))
    led.add(budget("10-23 08:03:10", "sales", "2026-10", "1000.00 USD"))
    led.add(invest("10-23 08:03:20", DE, "crm", "1000.00 EUR"))
    # Half-even cent rounding at static rates: 11.45 USD * 0.90 = 10.305 -> 10.30 (half-up
    # would give 10.31); 8.70 GBP * 1.15 = 10.005 -> 10.00, twice in one minute: retail/uk's
    # revenue of minute 08:05 is 20.00 (rounding the sum, 20.01, would be wrong).
    led.add(order("10-23 08:05:00", US, "O-1001", "11.45 USD", due="10-26 12:00:00"))
    led.add(order("10-23 08:05:20", UK, "O-1002", "8.70 GBP", due="10-26 12:00:00"))
    led.add(order("10-23 08:05:40", UK, "O-1003", "8.70 GBP", due="10-26 12:00:00"))


def _morning_orders_and_feedback(led: Ledger) -> None:
    # Five retail/de orders in two channels (channel is not a KPI dimension: one series), all
    # delivered on 10-26 in the hour 09:00Z, some on time and some late.
    led.add(order("10-23 09:00:00", DE, "O-1004", "40.00 EUR", due="10-26 09:30:00", channel="web"))
    led.add(
        order("10-23 09:07:00", DE, "O-1005", "60.00 EUR", due="10-26 09:30:00", channel="store")
    )
    led.add(order("10-23 09:14:00", DE, "O-1006", "25.50 EUR", due="10-26 09:10:00", channel="web"))
    led.add(order("10-23 09:21:00", DE, "O-1007", "99.99 EUR", due="10-26 10:00:00"))
    led.add(
        order("10-23 09:28:00", DE, "O-1008", "15.00 EUR", due="10-26 09:00:00", channel="store")
    )
    led.add(stock_out("10-23 09:35:00", DE, "sku-a", "4", "30.00 EUR", order_id="O-1004"))
    # CSAT 5,4,3,2,4: 3 of 5 satisfied (a 3 is not). NPS 10,9,8,6,7: 2 promoters, 1 detractor,
    # 2 passives -> +20. One answer has only an NPS score, one only a CSAT score.
    led.add(feedback("10-23 09:36:00", DE, csat=5, nps=10))
    led.add(feedback("10-23 09:37:00", DE, csat=4, nps=9))
    led.add(feedback("10-23 09:38:00", DE, csat=3, nps=8))
    led.add(feedback("10-23 09:39:00", DE, csat=2, nps=6))
    led.add(feedback("10-23 09:40:00", DE, nps=7))
    led.add(feedback("10-23 09:41:00", DE, csat=4))
    led.add(dispatch("10-23 09:45:00", DE, "O-1004", "dhl"))
    led.add(dispatch("10-23 09:46:00", DE, "O-1005"))
    # Invalid: binary garbage -> undecodable.
    led.raw(b"\xff\xfe\x00\x01garbage")


def _noon_fx_switch(led: Ledger) -> None:
    # The first USD and GBP rates arrive at noon. O-1011 occurred 10 s before the first USD
    # rate and arrives after it (out of order): no rate with occurred_at <= its own, so it still
    # converts at the static 0.90.
    led.add(order("10-23 11:59:00", US, "O-1010", "11.15 USD", due="10-26 15:00:00"))  # 10.04
    led.add(fx("10-23 12:00:00", "USD", "0.87"))
    led.add(order("10-23 11:59:50", US, "O-1011", "20.00 USD", due="10-26 15:00:00"))  # 18.00
    led.add(fx("10-23 12:00:30", "GBP", "1.17"))
    # 11.50 USD * 0.87 = 10.005 -> 10.00 (half-even); 20.00 GBP * 1.17 = 23.40.
    led.add(order("10-23 12:10:00", US, "O-1012", "11.50 USD", due="10-26 15:00:00"))
    led.add(order("10-23 12:11:00", UK, "O-1013", "20.00 GBP", due="10-27 12:00:00"))
    # Invalid: a blank line (undecodable), a NaN amount (non_finite_number), and a CHF order
    # (no fx_rate, not in the static table: unknown_currency).
    led.raw(b"")
    led.broken(order("10-23 12:12:00", DE, "O-1090", "NaN EUR"))
    led.add(order("10-23 12:13:00", DE, "O-1091", "50.00 CHF"))


def _fx_arrival_order(led: Ledger) -> None:
    # A USD rate at 14:00:00, then one that occurred at 13:59:30 but arrives later. The rate in
    # force is the newest by occurred_at among the rates ALREADY PROCESSED:
    #   O-1015 @13:59:45 arrives before the 13:59:30 rate -> noon rate 0.87 -> 17.40
    #   O-1016 @13:59:50 arrives after it                 -> 0.86 -> 17.20
    #   O-1014 @14:00:10 and O-1017 @14:00:20             -> 0.88 -> 88.00 and 8.80
    # The watermark is then 14:00:05..14:00:15 and minute 13:59 stays open until 14:01: no late.
    due = "10-26 16:00:00"
    led.add(fx("10-23 14:00:00", "USD", "0.88"))
    led.add(order("10-23 14:00:10", US, "O-1014", "100.00 USD", due=due))
    led.add(order("10-23 13:59:45", US, "O-1015", "20.00 USD", due=due))
    led.add(fx("10-23 13:59:30", "USD", "0.86"))
    led.add(order("10-23 13:59:50", US, "O-1016", "20.00 USD", due=due))
    led.add(order("10-23 14:00:20", US, "O-1017", "10.00 USD", due=due))


def _expenses(led: Ledger) -> None:
    # OpEx over cost centers ops/sales/it and categories travel/software/rent, in 3 currencies.
    led.add(expense("10-23 15:00:00", DE, "ops", "travel", "120.00 EUR"))
    led.add(expense("10-23 15:01:00", DE, "sales", "software", "45.00 USD"))  # 39.60
    led.add(expense("10-23 15:02:00", CORP, "it", "software", "200.00 EUR"))  # "it" has no budget
    led.add(expense("10-23 15:03:00", CORP, "ops", "rent", "300.00 EUR"))
    led.add(expense("10-23 15:04:00", UK, "sales", "travel", "50.00 GBP"))  # 58.50
    # Invalid: an expense without dimensions.cost_center -> schema_violation.
    led.broken(expense("10-23 15:05:00", DE, "ops", "travel", "10.00 EUR"), dimensions=DE)


def _late_and_duplicates(led: Ledger) -> None:
    # At 16:00:00 the watermark is 15:59:55. An order at 15:50 (its minute closes at 15:51 +
    # 60 s) and an invoice at 15:45 are late: they count nowhere (not in revenue, not in the AR
    # balance, and O-1019's later delivery gets no cycle time). O-1018 resent is a duplicate.
    o1018 = led.add(order("10-23 16:00:00", DE, "O-1018", "30.00 EUR", due="10-27 12:00:00"))
    led.add(order("10-23 15:50:00", DE, "O-1019", "44.00 EUR", due="10-27 12:00:00"))  # late
    led.add(invoice("10-23 15:45:00", DE, "inv-de-late", "999.00 EUR"))  # late
    led.resend(o1018)  # duplicate
    led.add(stock_out("10-23 16:00:30", DE, "sku-a", "1", "12.00 EUR", order_id="O-1018"))
    # The lateness boundary. After 17:02:05 the watermark is 17:02:00. An issue at 17:00:30 (its
    # minute ends 17:01, + 60 s = 17:02:00 <= watermark) is late; one at 17:01:00, 65 s behind
    # the newest event, is not (17:02 + 60 s = 17:03 > watermark).
    led.add(stock_in("10-23 17:02:05", DE, "sku-a", "10", "100.00 EUR"))
    led.add(stock_out("10-23 17:00:30", DE, "sku-a", "1", "10.00 EUR"))  # late
    led.add(stock_out("10-23 17:01:00", DE, "sku-a", "1", "13.00 EUR"))
    # The last second of the business day (23:59:59 CEST), one with a fraction of a second.
    led.add(order("10-23 21:59:59", DE, "O-1020", "10.00 EUR", due="10-27 10:00:00"))
    led.add(refund("2026-10-23T21:59:59.500Z", UK, "O-1013", "5.00 GBP"))  # 5.85


# --- Saturday 2026-10-24 (CEST; 10-23 22:00Z .. 10-24 22:00Z) -------------------------------


def _saturday(led: Ledger) -> None:
    # The first instant of the business day, written with its local offset (= 10-23 22:00Z).
    led.add(order("2026-10-24T00:00:00+02:00", DE, "O-1022", "12.00 EUR", due="10-26 09:40:00"))
    led.add(stock_out("10-24 08:00:00", UK, "sku-b", "2", "40.00 GBP"))  # 46.80
    led.add(order("10-24 08:30:00", UK, "O-1023", "35.00 GBP", due="10-27 12:00:00"))  # 40.95
    # Invalid: a JSON array instead of an object -> schema_violation.
    led.raw(orjson.dumps([feedback("10-24 08:31:00", DE, csat=5)]))
    led.add(order("10-24 09:00:00", DE, "O-1024", "80.00 EUR", due="10-26 09:45:00"))
    led.add(order("10-24 09:10:00", DE, "O-1025", "45.00 EUR", due="10-26 09:20:00"))
    led.add(order("10-24 09:20:00", DE, "O-1026", "22.00 EUR", due="10-26 09:50:00"))
    led.add(order("10-24 09:30:00", DE, "O-1027", "70.00 EUR", due="10-26 09:55:00"))
    led.add(payment("10-24 09:40:00", DE, "inv-de-1", "100.00 EUR"))
    led.add(bill_paid("10-24 09:50:00", UK, "bill-uk-1", "50.00 GBP"))  # 58.50
    # A minute (and 5 minutes, and an hour) whose revenue is exactly 0: an order and its
    # cancellation. Rows: revenue 0, orders 1, average order value 0; no margin ratios.
    led.add(order("10-24 10:00:00", DE, "O-1028", "50.00 EUR"))
    led.add(cancel("10-24 10:00:30", DE, "O-1028", "50.00 EUR"))
    # An hour with only a refund: revenue -10.00, no orders row, gross margin -10/-10 = 1.
    led.add(refund("10-24 11:00:00", DE, "O-1004", "10.00 EUR"))
    # An order and its cancellation in different minutes.
    led.add(order("10-24 12:00:00", UK, "O-1029", "30.00 GBP"))  # 35.10
    led.add(cancel("10-24 12:20:00", UK, "O-1029", "30.00 GBP"))  # 35.10
    # A USD rate quoted in GBP is accepted and ignored: USD still converts at 0.88.
    led.add(fx("10-24 13:00:00", "USD", "0.77", quote="GBP"))
    led.add(order("10-24 13:05:00", US, "O-1030", "100.00 USD", due="10-27 15:00:00"))  # 88.00
    # Invalid: an unknown event type -> unknown_type.
    led.broken(order("10-24 13:06:00", DE, "O-1092", "10.00 EUR"), type="order_shipped")
    # A benefit of "solar" before any investment in it: no roi_ratio row for solar yet.
    led.add(benefit("10-24 14:00:00", CORP, "solar", "200.00 EUR"))
    led.add(feedback("10-24 14:30:00", UK, csat=1, nps=0))
    uk_feedback = led.add(feedback("10-24 14:31:00", UK, csat=5, nps=9))
    led.resend(uk_feedback)  # duplicate
    led.add(stock_out("10-24 15:00:00", US, "sku-c", "10", "60.00 USD"))  # 52.80
    led.add(expense("10-24 15:30:00", DE, "ops", "travel", "80.00 EUR"))
    # Invalid: an fx_rate has no dimensions -> schema_violation.
    led.broken(fx("10-24 15:31:00", "GBP", "1.18"), dimensions=DE)


# --- Sunday 2026-10-25: 25 hours, 10-24 22:00Z .. 10-25 23:00Z ------------------------------


def _dst_sunday(led: Ledger) -> None:
    # 02:30 local happens twice (CEST, then CET); both belong to the 25-hour business day, in two
    # different UTC hours. 23:30 and 23:59:59 CET are 22:30Z and 22:59:59Z: still the 25th
    # (a day taken as 24 h from 22:00Z would put them on the 26th).
    due = "10-27 09:00:00"
    led.add(order("2026-10-25T00:00:00+02:00", DE, "O-1031", "20.00 EUR", due=due))  # 22:00Z
    led.add(order("2026-10-25T02:30:00+02:00", DE, "O-1032", "30.00 EUR", due=due))  # 00:30Z
    led.add(order("2026-10-25T02:30:00+01:00", DE, "O-1033", "40.00 EUR", due=due))  # 01:30Z
    led.add(feedback("2026-10-25T02:59:59+01:00", DE, csat=4, nps=10))  # 01:59:59Z
    # corp/de's first balance event: its ap_balance and working_capital start today.
    led.add(bill("10-25 09:00:00", CORP, "bill-corp-1", "150.00 EUR"))
    led.add(invest("10-25 10:00:00", CORP, "solar", "800.00 USD"))  # 704.00
    led.add(order("10-25 11:00:00", US, "O-1034", "11.45 USD", due="10-28 15:00:00"))  # 10.08
    led.add(stock_out("10-25 11:10:00", US, "sku-c", "5", "30.00 USD"))  # 26.40
    # Invalid: investment_made without dimensions.initiative_id -> schema_violation.
    led.broken(invest("10-25 11:20:00", CORP, "solar", "10.00 EUR"), dimensions=CORP)
    led.add(order("2026-10-25T23:30:00+01:00", DE, "O-1035", "25.00 EUR", due="10-28 09:00:00"))
    led.add(order("2026-10-25T23:59:59+01:00", UK, "O-1036", "10.00 GBP", due="10-28 12:00:00"))


# --- Monday 2026-10-26 (CET from now on; 10-25 23:00Z .. 10-26 23:00Z) ----------------------


def _monday_budgets_and_fx(led: Ledger) -> None:
    led.add(order("2026-10-26T00:00:00+01:00", US, "O-1037", "50.00 USD"))  # 44.00
    # The October ops budget is replaced by one with a later occurred_at (450.00). A third one
    # arrives after it but occurred earlier (07:59:50, out of order, not late): not in force.
    led.add(budget("10-26 08:00:00", "ops", "2026-10", "450.00 EUR"))
    led.add(budget("10-26 07:59:50", "ops", "2026-10", "700.00 EUR"))


def _monday_delivery_cluster(led: Ledger) -> None:
    # Ten retail/de deliveries in the hour 09:00Z: 6 on time (delivered exactly at the promised
    # instant counts as on time), 4 late. Cycle times in seconds (delivery - order placed):
    #   sorted 173100 174480 174720 175800 214500 257820 258960 260580 260700 261480
    #   q0.5 = sorted[floor(0.5 * 9)] = 214500; q0.95 = sorted[floor(0.95 * 9)] = 260700.
    led.add(deliver("10-26 09:05:00", DE, "O-1008", "10-26 09:00:00"))  # late, 257820
    led.add(deliver("10-26 09:10:00", DE, "O-1006", "10-26 09:10:00"))  # on time, 258960
    led.add(deliver("10-26 09:15:00", DE, "O-1025", "10-26 09:20:00"))  # on time, 173100
    led.add(deliver("10-26 09:25:00", DE, "O-1004", "10-26 09:30:00"))  # on time, 260700
    led.add(deliver("10-26 09:30:00", DE, "O-1005", "10-26 09:30:00"))  # on time, 260580
    led.add(deliver("10-26 09:35:00", DE, "O-1022", "10-26 09:40:00"))  # on time, 214500
    led.add(deliver("10-26 09:50:00", DE, "O-1024", "10-26 09:45:00"))  # late, 175800
    led.add(deliver("10-26 09:52:00", DE, "O-1026", "10-26 09:50:00"))  # late, 174720
    led.add(deliver("10-26 09:58:00", DE, "O-1027", "10-26 09:55:00"))  # late, 174480
    led.add(deliver("10-26 09:59:00", DE, "O-1007", "10-26 10:00:00"))  # on time, 261480
    # The GBP rate changes at 10:00:00: 10.00 GBP is 11.70 just before and 11.60 just after.
    led.add(order("10-26 09:59:30", UK, "O-1038", "10.00 GBP", due="10-28 12:00:00"))
    led.add(fx("10-26 10:00:00", "GBP", "1.16"))
    led.add(order("10-26 10:00:30", UK, "O-1039", "10.00 GBP", due="10-28 12:00:00"))


def _monday_other_deliveries(led: Ledger) -> None:
    # Two retail/uk deliveries at the same instant, exactly when promised: both on time.
    led.add(deliver("10-26 12:00:00", UK, "O-1002", "10-26 12:00:00"))
    led.add(deliver("10-26 12:00:00", UK, "O-1003", "10-26 12:00:00"))
    led.add(dispatch("10-26 12:10:00", US, "O-1010", "ups"))
    led.add(deliver("10-26 12:30:00", US, "O-1001", "10-26 12:00:00"))  # late
    led.add(deliver("10-26 14:00:00", US, "O-1010", "10-26 15:00:00"))
    led.add(deliver("10-26 14:20:00", US, "O-1011", "10-26 15:00:00"))
    led.add(deliver("10-26 15:10:00", US, "O-1012", "10-26 15:00:00"))  # late
    led.add(deliver("10-26 16:30:00", US, "O-1014", "10-26 16:00:00"))  # late
    # A delivery of an order that was never placed: in the on-time ratio, no cycle time.
    led.add(deliver("10-26 16:40:00", US, "O-9999", "10-26 17:00:00"))
    led.add(payment("10-26 17:00:00", US, "inv-us-1", "200.00 USD"))  # 176.00
    led.add(bill_paid("10-26 17:10:00", DE, "bill-de-1", "150.00 EUR"))
    led.add(expense("10-26 17:20:00", DE, "ops", "software", "60.00 EUR"))
    led.add(stock_out("10-26 17:30:00", DE, "sku-a", "3", "20.00 EUR"))


# --- Tuesday 2026-10-27 and Wednesday 2026-10-28 ---------------------------------------------


def _tuesday(led: Ledger) -> None:
    # November budgets, sent in October (sales in GBP at 1.16: 580.00).
    led.add(budget("10-27 08:00:00", "ops", "2026-11", "600.00 EUR"))
    led.add(budget("10-27 08:00:10", "sales", "2026-11", "500.00 GBP"))
    led.add(invest("10-27 08:30:00", DE, "crm", "500.00 EUR"))
    led.add(benefit("10-27 08:40:00", DE, "crm", "300.00 USD"))  # 264.00
    led.add(deliver("10-27 09:00:00", DE, "O-1031", "10-27 09:00:00"))
    led.add(deliver("10-27 09:05:00", DE, "O-1032", "10-27 09:00:00"))
    led.add(deliver("10-27 09:10:00", DE, "O-1033", "10-27 09:00:00"))
    led.add(deliver("10-27 10:00:00", DE, "O-1020", "10-27 10:00:00"))
    # O-1019 was late (never counted): its delivery is on time but has no cycle time.
    led.add(deliver("10-27 11:00:00", DE, "O-1019", "10-27 12:00:00"))
    led.add(deliver("10-27 11:30:00", DE, "O-1018", "10-27 12:00:00"))
    led.add(deliver("10-27 12:10:00", UK, "O-1013", "10-27 12:00:00"))
    led.add(deliver("10-27 12:20:00", UK, "O-1023", "10-27 12:00:00"))
    led.add(order("10-27 13:00:00", US, "O-1040", "200.00 USD"))  # 176.00
    led.add(invoice("10-27 13:30:00", US, "inv-us-2", "176.00 USD"))  # 154.88
    led.add(order("10-27 14:00:00", DE, "O-1041", "120.00 EUR"))
    led.add(order("10-27 14:00:40", DE, "O-1042", "80.00 EUR", channel="store"))
    # Out of order by 50 s but not late (minute 13:59 stays open until 14:01 > 14:00:35).
    led.add(feedback("10-27 13:59:50", DE, csat=4, nps=9))
    # Invalid: csat_score 6 is outside 1..5 -> schema_violation.
    led.broken(feedback("10-27 14:01:00", DE, csat=6))
    led.add(invoice("10-27 14:30:00", DE, "inv-de-2", "200.00 EUR"))
    led.add(stock_in("10-27 15:00:00", US, "sku-c", "100", "900.00 USD"))  # 792.00


def _wednesday(led: Ledger) -> None:
    led.add(stock_in("10-28 08:00:00", UK, "sku-b", "20", "300.00 GBP"))  # 348.00
    led.add(deliver("10-28 09:00:00", DE, "O-1035", "10-28 09:00:00"))
    led.add(deliver("10-28 12:00:00", UK, "O-1036", "10-28 12:00:00"))
    led.add(deliver("10-28 12:05:00", UK, "O-1038", "10-28 12:00:00"))
    led.add(deliver("10-28 12:06:00", UK, "O-1039", "10-28 12:00:00"))
    led.add(deliver("10-28 15:00:00", US, "O-1030", "10-27 15:00:00"))
    led.add(deliver("10-28 15:05:00", US, "O-1034", "10-28 15:00:00"))
    led.add(expense("10-28 16:00:00", CORP, "sales", "travel", "150.00 EUR"))
    led.add(expense("10-28 16:10:00", CORP, "ops", "travel", "75.50 EUR"))
    led.add(feedback("10-28 16:30:00", US, csat=3))
    led.add(feedback("10-28 16:31:00", US, nps=6))
    led.add(order("10-28 17:00:00", DE, "O-1043", "64.00 EUR", due="11-02 12:00:00"))
    led.add(expense("10-28 17:05:00", DE, "ops", "software", "33.00 EUR"))
    # Late (the watermark is 17:04:55): not in opex (its minute, hour and day are final), but
    # in October's sales actual: a late expense counts in its month while that can be restated.
    led.add(expense("10-28 16:50:00", CORP, "sales", "travel", "999.00 EUR"))
    # Invalid: occurred_at without a UTC offset -> schema_violation.
    led.broken(
        order("10-28 17:10:00", DE, "O-1093", "10.00 EUR"), occurred_at="2026-10-28T17:10:00"
    )
    # Thursday 2026-10-29 has no events at all: balances and 30d rows are still reported for it.


# --- Friday 2026-10-30 .. Monday 2026-11-02 -------------------------------------------------


def _friday_and_saturday(led: Ledger) -> None:
    led.add(payment("10-30 08:00:00", UK, "inv-uk-1", "150.00 GBP"))  # 174.00
    led.add(bill_paid("10-30 08:30:00", US, "bill-us-1", "250.00 USD"))  # 220.00
    led.add(order("10-30 09:00:00", DE, "O-1044", "55.55 EUR"))
    led.add(order("10-30 09:01:00", DE, "O-1045", "44.45 EUR"))
    led.add(stock_out("10-30 09:02:00", DE, "sku-a", "5", "40.00 EUR"))
    # A USD rate with four decimals: 11.00 USD * 0.9125 = 10.0375 -> 10.04, and
    # 2.00 USD * 0.9125 = 1.825 -> 1.82 (half-even; half-up would give 1.83).
    led.add(fx("10-30 10:00:00", "USD", "0.9125"))
    led.add(order("10-30 10:00:10", US, "O-1046", "11.00 USD"))
    led.add(order("10-30 10:00:20", US, "O-1047", "2.00 USD"))
    led.add(benefit("10-30 10:30:00", CORP, "solar", "500.00 USD"))  # 456.25
    led.add(feedback("10-30 11:00:00", UK, csat=4, nps=8))
    led.add(feedback("10-30 11:00:20", UK, csat=3, nps=10))
    # Invalid: a negative amount -> schema_violation.
    led.broken(order("10-30 11:30:00", DE, "O-1094", "-5.00 EUR"))
    led.add(expense("10-30 14:00:00", DE, "sales", "software", "19.99 EUR"))
    # Saturday 2026-10-31.
    led.add(order("10-31 09:00:00", UK, "O-1048", "25.00 GBP"))  # 29.00
    led.add(stock_out("10-31 09:30:00", UK, "sku-b", "1", "12.00 GBP"))  # 13.92
    # Invalid: before 2000 -> timestamp_out_of_range.
    led.broken(order("1999-12-31T23:59:59Z", DE, "O-1095", "10.00 EUR"))
    # 50.00 USD * 0.9125 = 45.625 -> 45.62 (half-even).
    led.add(refund("10-31 12:00:00", US, "O-1040", "50.00 USD"))
    # The month boundary in Berlin: 22:59:59Z is 23:59:59 CET on Oct 31 (October budget),
    # 23:00:00Z is 00:00 CET on Nov 1 (November budget, business day 2026-11-01).
    led.add(expense("10-31 22:59:59", CORP, "ops", "rent", "100.00 EUR"))
    led.add(expense("10-31 23:00:00", CORP, "ops", "rent", "110.00 EUR"))


def _sunday_and_monday(led: Ledger) -> None:
    led.add(expense("11-01 09:00:00", CORP, "sales", "travel", "40.00 GBP"))  # 46.40
    led.add(order("11-01 10:00:00", DE, "O-1049", "30.00 EUR"))
    led.add(feedback("11-01 10:30:00", DE, csat=5, nps=10))
    # A restatement: October (Berlin) ended 10-31 23:00:00Z and was final at 23:01:00Z; a
    # revision of its sales budget booked on Nov 1 is within the 1-day restatement horizon
    # (until 11-01 23:01:00Z): it replaces the 900.00 budget, October is published again.
    led.add(budget("11-01 10:45:00", "sales", "2026-10", "800.00 EUR"))
    # A late October expense booked on Nov 1, within the same horizon: it restates October's
    # sales actual (and nothing else: its minute, hour and day are final).
    led.add(expense("10-31 12:00:00", DE, "sales", "travel", "31.91 EUR"))
    # A CHF rate quoted in USD (valid, ignored) does not make CHF convertible: unknown_currency.
    led.add(fx("11-01 11:00:00", "CHF", "1.10", quote="USD"))
    led.add(order("11-01 11:05:00", DE, "O-1096", "20.00 CHF"))
    # Monday 2026-11-02.
    led.add(expense("11-02 08:00:00", UK, "ops", "travel", "70.00 GBP"))  # 81.20
    led.add(payment("11-02 08:30:00", US, "inv-us-2", "100.00 USD"))  # 91.25
    # Another revision of October's sales budget, past the horizon (11-01 23:01:00Z): late.
    led.add(budget("11-02 08:45:00", "sales", "2026-10", "2000.00 EUR"))
    # A late October expense past the horizon too: late, counted nowhere.
    led.add(expense("10-31 12:30:00", DE, "ops", "travel", "5.00 EUR"))
    led.add(bill("11-02 09:00:00", DE, "bill-de-2", "120.00 EUR"))
    led.add(dispatch("11-02 09:30:00", DE, "O-1043", "dhl"))
    led.add(deliver("11-02 10:00:00", DE, "O-1041", "10-30 12:00:00"))  # late
    led.add(deliver("11-02 10:05:00", DE, "O-1042", "11-03 12:00:00"))
    led.add(deliver("11-02 10:10:00", DE, "O-1043", "11-02 12:00:00"))
    led.add(feedback("11-02 11:00:00", US, csat=5, nps=9))
    led.add(stock_out("11-02 12:00:00", US, "sku-c", "20", "100.00 USD"))  # 91.25
    # The last event: 23:59 CET, still business day 2026-11-02.
    led.add(order("11-02 22:59:00", DE, "O-1050", "15.00 EUR"))


BLOCKS = (
    _opening_balances,
    _morning_orders_and_feedback,
    _noon_fx_switch,
    _fx_arrival_order,
    _expenses,
    _late_and_duplicates,
    _saturday,
    _dst_sunday,
    _monday_budgets_and_fx,
    _monday_delivery_cluster,
    _monday_other_deliveries,
    _tuesday,
    _wednesday,
    _friday_and_saturday,
    _sunday_and_monday,
)


def ledger_lines() -> list[bytes]:
    """The reference ledger: one JSON envelope (or one deliberately invalid line) per element,
    in arrival order, without line terminators."""
    led = Ledger()
    for block in BLOCKS:
        block(led)
    return led.lines


def ledger_bytes() -> bytes:
    """The file `pulse backtest` reads: every line followed by a newline."""
    return b"".join(line + b"\n" for line in ledger_lines())
