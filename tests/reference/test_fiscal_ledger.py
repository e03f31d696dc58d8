"""A hand-built fiscal ledger: budget variance per fiscal period, quarter and year to date on a
4-4-5 calendar, every expected figure computed by hand in the comments.

Settings: `PULSE_FISCAL_CALENDAR=4-4-5:1` (years of 52/53 weeks from the Monday nearest Jan 1),
business time zone Europe/Berlin, watermark delay 5 s, allowed lateness 60 s, restatement
horizon 92 days (the default). Fiscal 2026 starts Monday Dec 29, 2025 (Jan 1, 2026 is a
Thursday; the Monday nearest it is 3 days before). Its periods, local midnight to midnight:

    P01  Dec 29, 2025 - Jan 26, 2026  4 weeks   2025-12-28T23:00Z - 2026-01-25T23:00Z
    P02  Jan 26 - Feb 23              4 weeks   2026-01-25T23:00Z - 2026-02-22T23:00Z
    P03  Feb 23 - Mar 30              5 weeks   2026-02-22T23:00Z - 2026-03-29T22:00Z
                                      (summer time starts Mar 29: 35 days less one hour)
    P04  Mar 30 - Apr 27              4 weeks   2026-03-29T22:00Z - 2026-04-26T22:00Z
    Q1 = P01-P03; Q2 = P04-P06 ends Jun 29 (2026-06-28T22:00Z).

Cost center `ops`, all in EUR:

    budgets   P01 1,000.00 (set Dec 29), revised to 750.00 on Feb 2 (P01 is final then: a
              restatement within the horizon); P02 1,000.00; P03 1,500.00; P04 1,200.00
    expenses  Dec 29 00:30 CET (Dec 28 23:30 UTC: still fiscal 2025 in UTC)    400.00  P01
              Jan 25 23:30 CET (the last half hour of P01)                     500.00  P01
              Jan 26 00:00 CET (the first instant of P02)                      300.00  P02
              Feb 20 12:00 CET                                               1,200.00  P02
              Mar 29 23:30 CEST (after the change, the last half hour of P03) 1,000.00  P03
              Mar 30 00:15 CEST (Mar 29 22:15 UTC: P03 in UTC)                 700.00  P04
              Apr 26 12:00 CEST                                                600.00  P04
"""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from streams.core import Finalizer, FxTable, PartitionState, Watermark, Windows, compile_catalog
from streams.core.validation import ValidationLimits, decode_event
from streams.errors import InvalidEvent
from streams.offline.backtest import rfc3339, run_backtest
from streams.settings import Settings

CALENDAR = "4-4-5:1"
SETTINGS = {
    "business_timezone": "Europe/Berlin",
    "watermark_delay_seconds": 5,
    "allowed_lateness_seconds": 60,
    "fiscal_calendar": CALENDAR,
}
_ids = iter(range(1, 1000))


def _event(type_: str, at: str, cost_center: str = "ops", **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "event_id": f"ev-{next(_ids):04d}",
        "occurred_at": at,
        "source": "fpa" if type_ == "budget_set" else "erp",
        "schema_version": 1,
        "dimensions": {"business_unit": "corp", "region": "de", "cost_center": cost_center},
        "currency": "EUR",
        **fields,
    }


def budget(at: str, period: str, amount: str) -> dict[str, Any]:
    return _event("budget_set", at, period=period, amount=amount)


def expense(at: str, amount: str, cost_center: str = "ops") -> dict[str, Any]:
    return _event("expense_posted", at, cost_center, category="travel", amount=amount)


LEDGER = [
    expense("2025-12-29T00:30:00+01:00", "400.00"),
    budget("2025-12-29T08:00:00+01:00", "FY2026-P01", "1000.00"),
    budget("2025-12-29T08:00:10+01:00", "FY2026-P02", "1000.00"),
    budget("2025-12-29T08:00:20+01:00", "FY2026-P03", "1500.00"),
    budget("2025-12-29T08:00:30+01:00", "FY2026-P04", "1200.00"),
    expense("2026-01-25T23:30:00+01:00", "500.00"),
    expense("2026-01-26T00:00:00+01:00", "300.00"),
    # Cost center `it` has no budget (no variance row): it only moves the watermark past the
    # end of P01, which is then published final (-0.1) before the revision comes.
    expense("2026-01-28T10:00:00+01:00", "10.00", cost_center="it"),
    budget("2026-02-02T09:00:00+01:00", "FY2026-P01", "750.00"),  # line 9: P01 restated
    expense("2026-02-20T12:00:00+01:00", "1200.00"),
    expense("2026-03-29T23:30:00+02:00", "1000.00"),
    expense("2026-03-30T00:15:00+02:00", "700.00"),
    expense("2026-04-26T12:00:00+02:00", "600.00"),
]
"""In arrival order and event-time order."""

P01 = ("2025-12-28T23:00:00Z", "2026-01-25T23:00:00Z")
P02 = ("2026-01-25T23:00:00Z", "2026-02-22T23:00:00Z")
P03 = ("2026-02-22T23:00:00Z", "2026-03-29T22:00:00Z")
P04 = ("2026-03-29T22:00:00Z", "2026-04-26T22:00:00Z")
Q1 = (P01[0], P03[1])
Q2 = (P04[0], "2026-06-28T22:00:00Z")

EXPECTED = {
    # P01: spent 400 + 500 = 900 against the revised 750: 150 / 750 = 0.2.
    ("fp", *P01): Decimal("0.2"),
    # P02: 300 + 1,200 = 1,500 against 1,000: 0.5.
    ("fp", *P02): Decimal("0.5"),
    # P03: 1,000 against 1,500: -500 / 1,500 = -0.33333333333... -> -0.3333333333.
    ("fp", *P03): Decimal("-0.3333333333"),
    # P04: 700 + 600 = 1,300 against 1,200: 100 / 1,200 = 0.083333... -> 0.0833333333.
    ("fp", *P04): Decimal("0.0833333333"),
    # Q1: 900 + 1,500 + 1,000 = 3,400 against 750 + 1,000 + 1,500 = 3,250:
    # 150 / 3,250 = 0.04615384615... -> 0.0461538462.
    ("fq", *Q1): Decimal("0.0461538462"),
    # Q2 (only P04 has anything yet): as P04.
    ("fq", *Q2): Decimal("0.0833333333"),
    # Year to date, each as of the end of its period (window_start/end: the period's):
    # P01: as P01, 0.2.
    ("fytd", *P01): Decimal("0.2"),
    # P02: 2,400 against 1,750: 650 / 1,750 = 0.371428571428... -> 0.3714285714.
    ("fytd", *P02): Decimal("0.3714285714"),
    # P03: as Q1, 0.0461538462.
    ("fytd", *P03): Decimal("0.0461538462"),
    # P04: 4,700 against 4,450: 250 / 4,450 = 0.056179775280... -> 0.0561797753.
    ("fytd", *P04): Decimal("0.0561797753"),
}


def test_backtest_gives_the_hand_computed_fiscal_rows() -> None:
    out, err = io.StringIO(), io.StringIO()
    run_backtest([orjson.dumps(e) for e in LEDGER], Settings(**SETTINGS), out, err)
    assert "13 counted, 0 rejected" in err.getvalue()
    got = {
        (r["window"], r["window_start"], r["window_end"]): Decimal(r["value"])
        for r in csv.DictReader(io.StringIO(out.getvalue()))
        if r["kpi"] == "budget_variance_ratio" and r["dimensions"] == "cost_center=ops"
    }
    # No calendar-month budget: no 1mo variance (its budget is 0), only the fiscal rows.
    assert got == EXPECTED


def test_the_p01_revision_restates_p01_and_its_year_to_date_with_their_as_reported_values() -> None:
    catalog = compile_catalog(fiscal=True)
    windows = Windows.for_timezone(ZoneInfo("Europe/Berlin"), 92, CALENDAR)
    part = PartitionState(
        catalog,
        windows,
        watermark=Watermark(5.0, 60.0),
        fx=FxTable("EUR", {}),
        dedupe_max_entries=10_000,
        retained_windows=10,
    )
    finalizer = Finalizer(catalog, windows, 60.0)
    published: list[tuple[str, str, Decimal | None, int, Decimal | None]] = []
    names = {P01[0]: "P01", P02[0]: "P02"}
    for event in LEDGER:
        part.apply(decode_event(orjson.dumps(event), ValidationLimits(), math.inf))
        for v in finalizer.close(part, part.watermark.value):
            if v.labels == (("cost_center", "ops"),) and v.window in {"fp", "fytd"}:
                name = names.get(rfc3339(v.start), rfc3339(v.start))
                published.append((v.window, name, v.value, v.revision, v.as_reported))
    p01 = [p for p in published if p[1] == "P01"]
    # First final at Jan 26 00:01 CET: (900 - 1,000) / 1,000 = -0.1; then, after the Feb 2
    # revision, revision 2 at 0.2 with the value first reported.
    assert p01 == [
        ("fp", "P01", Decimal("-0.1"), 1, None),
        ("fytd", "P01", Decimal("-0.1"), 1, None),
        ("fp", "P01", Decimal("0.2"), 2, Decimal("-0.1")),
        ("fytd", "P01", Decimal("0.2"), 2, Decimal("-0.1")),
    ]
    # P02 was not final yet when the revision came: its first year to date has it already.
    assert [p for p in published if p[:2] == ("fytd", "P02")] == [
        ("fytd", "P02", Decimal("0.3714285714"), 1, None)
    ]


def test_a_fiscal_revision_beyond_the_horizon_is_late_and_names_the_period() -> None:
    # P01 ends Jan 26 00:00 CET and is final 60 s later; with a 5-day horizon it can be
    # restated until Jan 31 00:01 CET, so the Feb 2 revision (line 9) is late.
    out, err = io.StringIO(), io.StringIO()
    run_backtest(
        [orjson.dumps(e) for e in LEDGER], Settings(**SETTINGS, restatement_days=5), out, err
    )
    assert "line 9: late: period FY2026-P01 is closed beyond the restatement horizon" in (
        err.getvalue()
    )
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    p01 = [r for r in rows if r["window"] == "fp" and r["window_start"] == P01[0]]
    assert [Decimal(r["value"]) for r in p01] == [Decimal("-0.1")]


def test_an_invalid_fiscal_period_is_not_counted() -> None:
    line = orjson.dumps(budget("2026-01-02T00:00:00Z", "FY2026-P13", "1.00"))
    with pytest.raises(InvalidEvent) as caught:
        decode_event(line, ValidationLimits(), math.inf)
    assert caught.value.reason == "schema_violation"


def _pulse_backtest(path: Path, calendar: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PULSE_")}
    env |= {
        "PULSE_BUSINESS_TIMEZONE": "Europe/Berlin",
        "PULSE_WATERMARK_DELAY_SECONDS": "5",
        "PULSE_ALLOWED_LATENESS_SECONDS": "60",
        "PULSE_FISCAL_CALENDAR": calendar,
    }
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "backtest", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_pulse_backtest_reads_the_calendar_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "fiscal.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in LEDGER) + b"\n")
    run = _pulse_backtest(path, CALENDAR)
    assert run.returncode == 0, run.stderr
    got = {
        (r["window"], r["window_start"], r["window_end"]): Decimal(r["value"])
        for r in csv.DictReader(io.StringIO(run.stdout))
        if r["kpi"] == "budget_variance_ratio" and r["dimensions"] == "cost_center=ops"
    }
    assert got == EXPECTED
    refused = _pulse_backtest(path, "4-4-6:1")
    assert refused.returncode == 2
    assert "PULSE_FISCAL_CALENDAR" in refused.stderr
    assert refused.stdout == ""
