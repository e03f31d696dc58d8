"""Checks of expected.py itself: values worked out by hand from ledger.py, no engine needed.

Converted amounts (EUR, half-even to the cent) are quoted in ledger.py's comments; each sum below
is written out. Windows are [start, end) in UTC; Berlin is UTC+2 until 2026-10-25 03:00 local and
UTC+1 after.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal

import pytest
from expected import expected_rejections, expected_rows, kpi_kind, process
from ledger import SETTINGS_ENV, ledger_bytes, ledger_lines

LINES = ledger_lines()
ROWS = expected_rows(LINES)
REJECTED = expected_rejections(LINES)

DE = {"business_unit": "retail", "region": "de"}
UK = {"business_unit": "retail", "region": "uk"}
US = {"business_unit": "wholesale", "region": "us"}

DAY_23 = ("2026-10-22T22:00:00Z", "2026-10-23T22:00:00Z")
DAY_24 = ("2026-10-23T22:00:00Z", "2026-10-24T22:00:00Z")
DAY_25 = ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z")  # 25 hours
DAY_26 = ("2026-10-25T23:00:00Z", "2026-10-26T23:00:00Z")
DAY_27 = ("2026-10-26T23:00:00Z", "2026-10-27T23:00:00Z")
DAY_29 = ("2026-10-28T23:00:00Z", "2026-10-29T23:00:00Z")  # no events that day
OCTOBER = ("2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z")
NOVEMBER = ("2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z")


def key(kpi: str, window: str, bounds: tuple[str, str], dims: dict[str, str]) -> tuple[str, ...]:
    text = ";".join(f"{name}={dims[name]}" for name in sorted(dims))
    return (kpi, window, bounds[0], bounds[1], text)


def row(kpi: str, window: str, bounds: tuple[str, str], dims: dict[str, str]) -> Decimal:
    return ROWS[key(kpi, window, bounds, dims)]


def line_number(fragment: bytes) -> int:
    """The 1-based number of the only line containing `fragment`."""
    numbers = [n for n, line in enumerate(LINES, start=1) if fragment in line]
    assert len(numbers) == 1, (fragment, numbers)
    return numbers[0]


def test_the_ledger_has_the_required_shape():
    # 195 + the two October budget revisions + two late October expenses (issue 15)
    assert len(LINES) == 199
    counted, _ = process(LINES)
    assert len(counted) == 178  # 199 lines - 21 rejected
    assert len({event.kind for event in counted}) == 17
    assert {event.body.get("currency") for event in counted} >= {"EUR", "GBP", "USD"}
    assert ledger_bytes().count(b"\n") == len(LINES)
    assert SETTINGS_ENV["PULSE_BUSINESS_TIMEZONE"] == "Europe/Berlin"


def test_rejections_by_reason():
    # Built in ledger.py: garbage + blank line; NaN; 2 CHF orders; 7 contract breaches (expense
    # without cost_center, JSON array, fx_rate with dimensions, investment without initiative,
    # csat 6, naive occurred_at, negative amount); order_shipped; a 1999 event; 5 late (O-1019,
    # inv-de-late, the 17:00:30 issue, the sales budget of Nov 2 and the 5.00 expense of Oct 31
    # booked on Nov 2, both for an October past the restatement horizon; the late 999.00 and
    # 31.91 expenses count in October, which they can still restate); 2 resent duplicates.
    assert Counter(REJECTED.values()) == {
        "undecodable": 2,
        "non_finite_number": 1,
        "unknown_currency": 2,
        "schema_violation": 7,
        "unknown_type": 1,
        "timestamp_out_of_range": 1,
        "late": 5,
        "duplicate": 2,
    }
    assert REJECTED[line_number(b"garbage")] == "undecodable"
    assert REJECTED[LINES.index(b"") + 1] == "undecodable"
    assert REJECTED[line_number(b'"2026-10-23T15:50:00Z"')] == "late"  # O-1019
    assert REJECTED[line_number(b'"2026-11-02T08:45:00Z"')] == "late"  # past the horizon
    assert REJECTED[line_number(b'"2026-10-31T12:30:00Z"')] == "late"  # past the horizon
    assert line_number(b"31.91") not in REJECTED  # late, restates October's sales actual
    assert line_number(b'"2026-10-28T16:50:00Z"') not in REJECTED  # late, October still open


def test_the_lateness_boundary():
    # Newest event 17:02:05 -> watermark 17:02:00. 17:00:30 is in minute [17:00, 17:01):
    # 17:01 + 60 s = 17:02:00 <= 17:02:00, late. 17:01:00 is in [17:01, 17:02): 17:03 > 17:02:00.
    assert REJECTED[line_number(b"2026-10-23T17:00:30Z")] == "late"
    assert line_number(b"2026-10-23T17:01:00Z") not in REJECTED


def test_the_dst_day_is_25_hours_long():
    # Business day 2026-10-25 = [00:00 CEST, 24:00 CET) = [10-24 22:00Z, 10-25 23:00Z).
    # retail/de: O-1031 20.00 (00:00 CEST) + O-1032 30.00 (02:30 CEST) + O-1033 40.00 (02:30
    # CET) + O-1035 25.00 (23:30 CET = 22:30Z) = 115.00. retail/uk: O-1036 10.00 GBP at 23:59:59
    # CET (22:59:59Z) * 1.17 = 11.70.
    assert row("revenue", "1d", DAY_25, DE) == Decimal("115.00")
    assert row("revenue", "1d", DAY_25, UK) == Decimal("11.70")
    # The two 02:30 orders fall in different UTC hours.
    assert row("revenue", "1h", ("2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z"), DE) == 30
    assert row("revenue", "1h", ("2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"), DE) == 40
    # Monday is 24 h again, in CET; O-1037 50.00 USD * 0.88 = 44.00 at its first instant.
    assert row("revenue", "1d", DAY_26, US) == Decimal("44.00")


def test_revenue_of_one_day():
    # wholesale/us on 2026-10-23: O-1001 10.30 + O-1010 10.04 + O-1011 18.00 + O-1012 10.00
    # + O-1014 88.00 + O-1015 17.40 + O-1016 17.20 + O-1017 8.80 = 179.74 over 8 orders;
    # average 179.74 / 8 = 22.4675; no COGS that day: gross margin 1.
    assert row("revenue", "1d", DAY_23, US) == Decimal("179.74")
    assert row("orders", "1d", DAY_23, US) == 8
    assert row("average_order_value", "1d", DAY_23, US) == Decimal("22.4675")
    assert row("gross_margin_ratio", "1d", DAY_23, US) == 1
    # retail/de on 2026-10-23: 40.00 + 60.00 + 25.50 + 99.99 + 15.00 + 30.00 (O-1018, its
    # duplicate not counted) + 10.00 (O-1020 at 23:59:59 CEST) = 280.49; the late O-1019 44.00,
    # the NaN and the CHF orders count nowhere.
    assert row("revenue", "1d", DAY_23, DE) == Decimal("280.49")
    assert row("orders", "1d", DAY_23, DE) == 7
    # O-1022 at 00:00 CEST on the 24th opens the next day: O-1022 12.00 + O-1024..O-1027
    # 80.00 + 45.00 + 22.00 + 70.00 + O-1028 50.00 - its cancellation 50.00 - a refund 10.00
    # = 219.00 over 6 orders.
    assert row("revenue", "1d", DAY_24, DE) == Decimal("219.00")
    assert row("orders", "1d", DAY_24, DE) == 6


def test_half_even_cent_rounding_per_event():
    # 8.70 GBP * 1.15 = 10.005 -> 10.00, twice: 20.00 (rounding the sum would give 20.01).
    minute = ("2026-10-23T08:05:00Z", "2026-10-23T08:06:00Z")
    assert row("revenue", "1m", minute, UK) == Decimal("20.00")
    # 11.45 USD * 0.90 = 10.305 -> 10.30 (half-up: 10.31).
    assert row("revenue", "1m", minute, US) == Decimal("10.30")
    # 11.00 * 0.9125 = 10.0375 -> 10.04; 2.00 * 0.9125 = 1.825 -> 1.82: 11.86.
    minute = ("2026-10-30T10:00:00Z", "2026-10-30T10:01:00Z")
    assert row("revenue", "1m", minute, US) == Decimal("11.86")
    # A refund of 50.00 USD * 0.9125 = 45.625 -> 45.62.
    minute = ("2026-10-31T12:00:00Z", "2026-10-31T12:01:00Z")
    assert row("revenue", "1m", minute, US) == Decimal("-45.62")


def test_fx_rate_in_force_follows_arrival_order_and_occurred_at():
    # Static 0.90 before the first USD rate: 11.15 -> 10.035 -> 10.04, and 20.00 -> 18.00 for
    # O-1011 which occurred at 11:59:50 but arrived after the 12:00:00 rate: 28.04.
    minute = ("2026-10-23T11:59:00Z", "2026-10-23T12:00:00Z")
    assert row("revenue", "1m", minute, US) == Decimal("28.04")
    # Minute 13:59: O-1015 arrived before the 13:59:30 rate -> 0.87 -> 17.40; O-1016 after it
    # -> 0.86 -> 17.20: 34.60. Minute 14:00: 0.88 -> 88.00 + 8.80 = 96.80.
    minute = ("2026-10-23T13:59:00Z", "2026-10-23T14:00:00Z")
    assert row("revenue", "1m", minute, US) == Decimal("34.60")
    minute = ("2026-10-23T14:00:00Z", "2026-10-23T14:01:00Z")
    assert row("revenue", "1m", minute, US) == Decimal("96.80")
    # GBP 1.17 -> 1.16 at 2026-10-26T10:00:00Z: 10.00 GBP is 11.70, then 11.60.
    minute = ("2026-10-26T09:59:00Z", "2026-10-26T10:00:00Z")
    assert row("revenue", "1m", minute, UK) == Decimal("11.70")
    minute = ("2026-10-26T10:00:00Z", "2026-10-26T10:01:00Z")
    assert row("revenue", "1m", minute, UK) == Decimal("11.60")


def test_budget_variance():
    # ops, October: budget 450.00 (the 10-26 08:00 one; the 700.00 that arrived later occurred
    # earlier). Actual: 120.00 + 300.00 + 80.00 + 60.00 + 75.50 + 33.00 + 100.00 (22:59:59Z on
    # Oct 31 = 23:59:59 CET) = 768.50. (768.50 - 450) / 450 = 0.70777... -> 0.7077777778.
    assert row("budget_variance_ratio", "1mo", OCTOBER, {"cost_center": "ops"}) == Decimal(
        "0.7077777778"
    )
    # sales, October: 1000.00 USD * 0.90 = 900.00, restated on Nov 1 to 800.00 (the 2000.00
    # of Nov 2 is past the 1-day restatement horizon: late). Actual 39.60 + 58.50 + 150.00 +
    # 19.99 = 268.09, plus the late 999.00 (Oct 28, October still open) and the late 31.91
    # (Oct 31, booked Nov 1 within the horizon) = 1299.00: 499.00 / 800 = 0.62375. The late
    # 5.00 ops expense of Oct 31 came on Nov 2, past the horizon: ops stays as above.
    assert row("budget_variance_ratio", "1mo", OCTOBER, {"cost_center": "sales"}) == Decimal(
        "0.62375"
    )
    # November: ops 600.00 vs 110.00 (Nov 1 00:00 CET) + 81.20 = 191.20 -> -408.80 / 600;
    # sales 500.00 GBP * 1.16 = 580.00 vs 46.40 -> -533.60 / 580 = -0.92.
    assert row("budget_variance_ratio", "1mo", NOVEMBER, {"cost_center": "ops"}) == Decimal(
        "-0.6813333333"
    )
    assert row("budget_variance_ratio", "1mo", NOVEMBER, {"cost_center": "sales"}) == Decimal(
        "-0.92"
    )
    # "it" has expenses but no budget: no row.
    assert not [k for k in ROWS if k[0] == "budget_variance_ratio" and "=it" in k[4]]


def test_deliveries_of_one_hour():
    # retail/de, 2026-10-26 09:00Z: 10 deliveries, 6 on time. Cycle times sorted: 173100 174480
    # 174720 175800 214500 257820 258960 260580 260700 261480; floor(0.5 * 9) = 4 -> 214500,
    # floor(0.95 * 9) = 8 -> 260700.
    hour = ("2026-10-26T09:00:00Z", "2026-10-26T10:00:00Z")
    assert row("on_time_delivery_ratio", "1h", hour, DE) == Decimal("0.6")
    assert row("order_cycle_time_seconds", "1h", hour, {**DE, "quantile": "0.5"}) == 214500
    assert row("order_cycle_time_seconds", "1h", hour, {**DE, "quantile": "0.95"}) == 260700
    # 2026-10-27 11:00Z: O-1019's order was late, so its delivery has no cycle time (the 1m
    # window has an on-time row and no cycle-time row).
    minute = ("2026-10-27T11:00:00Z", "2026-10-27T11:01:00Z")
    assert row("on_time_delivery_ratio", "1m", minute, DE) == 1
    assert key("order_cycle_time_seconds", "1m", minute, {**DE, "quantile": "0.5"}) not in ROWS


def test_feedback_of_one_hour():
    # CSAT 5,4,3,2,4 -> 3/5; NPS 10,9,8,6,7 -> (2 - 1) / 5 * 100 = 20.
    hour = ("2026-10-23T09:00:00Z", "2026-10-23T10:00:00Z")
    assert row("csat_ratio", "1h", hour, DE) == Decimal("0.6")
    assert row("nps", "1h", hour, DE) == 20


def test_zero_revenue_and_refund_only_windows():
    # Order and cancellation of 50.00 in one minute: revenue 0, AOV 0, no margin rows.
    minute = ("2026-10-24T10:00:00Z", "2026-10-24T10:01:00Z")
    assert row("revenue", "1m", minute, DE) == 0
    assert row("average_order_value", "1m", minute, DE) == 0
    assert key("gross_margin_ratio", "1m", minute, DE) not in ROWS
    assert key("operating_margin_ratio", "1m", minute, DE) not in ROWS
    # A refund alone: revenue -10.00, gross margin (-10 - 0) / -10 = 1, no orders row.
    hour = ("2026-10-24T11:00:00Z", "2026-10-24T12:00:00Z")
    assert row("revenue", "1h", hour, DE) == Decimal("-10.00")
    assert row("gross_margin_ratio", "1h", hour, DE) == 1
    assert key("orders", "1h", hour, DE) not in ROWS


def test_balances_and_days():
    # retail/de at the end of 2026-10-23: AR 300.00 (inv-de-late 999.00 was late); inventory
    # 1000.00 + 100.00 - 30.00 - 12.00 - 13.00 = 1045.00 (the late 10.00 issue not taken off);
    # AP 400.00; working capital 300 + 1045 - 400 = 945.00. COGS 55.00: DIO = 1045 * 30 / 55
    # = 570, DPO = 400 * 30 / 55 = 218.181818... -> 218.1818181818.
    assert row("ar_balance", "balance", DAY_23, DE) == Decimal("300.00")
    assert row("inventory_value", "balance", DAY_23, DE) == Decimal("1045.00")
    assert row("working_capital", "balance", DAY_23, DE) == Decimal("945.00")
    thirty_days = ("2026-09-23T22:00:00Z", "2026-10-23T22:00:00Z")
    assert row("dio_days", "30d", thirty_days, DE) == 570
    assert row("dpo_days", "30d", thirty_days, DE) == Decimal("218.1818181818")
    # After a payment of 100.00 on the 24th: 200.00.
    assert row("ar_balance", "balance", DAY_24, DE) == Decimal("200.00")
    # 2026-10-29 has no events, yet balances and 30d rows are reported; no flow rows.
    assert row("ar_balance", "balance", DAY_29, DE) == Decimal("400.00")  # + inv-de-2 200.00
    assert key("revenue", "1d", DAY_29, DE) not in ROWS
    # The 30 days ending 2026-11-02 start at 2026-10-04 00:00 CEST and end at 24:00 CET.
    assert key("dso_days", "30d", ("2026-10-03T22:00:00Z", "2026-11-02T23:00:00Z"), DE) in ROWS
    # corp/de's first balance event is a bill on the 25th: no row before.
    corp = {"business_unit": "corp", "region": "de"}
    assert key("ap_balance", "balance", DAY_24, corp) not in ROWS
    assert row("ap_balance", "balance", DAY_25, corp) == Decimal("150.00")


def test_roi():
    # crm: -1000 / 1000 = -1 on the 23rd; on the 27th (264.00 - 1500.00) / 1500 = -0.824.
    assert row("roi_ratio", "cumulative", DAY_23, {"initiative_id": "crm"}) == -1
    assert row("roi_ratio", "cumulative", DAY_27, {"initiative_id": "crm"}) == Decimal("-0.824")
    # solar: a benefit on the 24th but no investment yet -> no row; on the 25th 800 USD * 0.88
    # = 704.00 invested: (200 - 704) / 704 = -0.715909090909... -> -0.7159090909.
    assert key("roi_ratio", "cumulative", DAY_24, {"initiative_id": "solar"}) not in ROWS
    assert row("roi_ratio", "cumulative", DAY_25, {"initiative_id": "solar"}) == Decimal(
        "-0.7159090909"
    )


@pytest.mark.parametrize(
    ("kpi", "kind"),
    [("revenue", "money"), ("orders", "count"), ("nps", "ratio"), ("dso_days", "ratio")],
)
def test_kpi_kinds(kpi, kind):
    assert kpi_kind(kpi) == kind


def test_every_key_has_the_csv_shape():
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    windows = {"1m", "5m", "1h", "1d", "1mo", "balance", "cumulative", "30d"}
    for kpi, window, start, end, dims in ROWS:
        kpi_kind(kpi)  # a known KPI
        assert window in windows
        assert stamp.match(start), start
        assert stamp.match(end), end
        assert start < end
        names = [pair.split("=")[0] for pair in dims.split(";")]
        assert names == sorted(names)
    assert all(value.is_finite() for value in ROWS.values())
