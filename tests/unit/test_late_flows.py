"""Late flow events restate a period (issue 15): an expense whose 1-minute window is final still
counts in its month (and fiscal period) while that can be restated, and only there; beyond the
horizon, or for an event that feeds no period window, it is dead-lettered `late`, saying which.

Every expected figure is computed by hand in the comments.
"""

from __future__ import annotations

import csv
import io
import math
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from streams.core import Finalizer, FxTable, PartitionState, Watermark, Windows, compile_catalog
from streams.core.kpi_values import KpiValue
from streams.core.late_flows import KeptUntil
from streams.core.validation import ValidationLimits, decode_event
from streams.errors import InvalidEvent
from streams.offline.backtest import run_backtest
from streams.settings import Settings

_ids = iter(range(1, 1_000_000))
CATALOG = compile_catalog()
FISCAL = compile_catalog(fiscal=True)
DIMS = {"business_unit": "corp", "region": "de"}


def budget(at: str, period: str, amount: str, center: str = "CC-40") -> dict[str, Any]:
    return {
        "type": "budget_set",
        "event_id": f"b-{next(_ids)}",
        "occurred_at": at,
        "source": "ledger",
        "schema_version": 1,
        "dimensions": DIMS | {"cost_center": center},
        "period": period,
        "amount": amount,
        "currency": "EUR",
    }


def expense(at: str, amount: str, center: str = "CC-40") -> dict[str, Any]:
    return {
        "type": "expense_posted",
        "event_id": f"e-{next(_ids)}",
        "occurred_at": at,
        "source": "ledger",
        "schema_version": 1,
        "dimensions": DIMS | {"cost_center": center},
        "category": "travel",
        "amount": amount,
        "currency": "EUR",
    }


def order(at: str) -> dict[str, Any]:
    return {
        "type": "order_placed",
        "event_id": f"o-{next(_ids)}",
        "occurred_at": at,
        "source": "ledger",
        "schema_version": 1,
        "dimensions": DIMS,
        "order_id": f"O-{next(_ids)}",
        "amount": "10.00",
        "currency": "EUR",
    }


def partition(restatement_days: float = 92, fiscal: str = "") -> PartitionState:
    return PartitionState(
        FISCAL if fiscal else CATALOG,
        Windows.for_timezone(ZoneInfo("UTC"), restatement_days, fiscal),
        watermark=Watermark(5.0, 60.0),
        fx=FxTable("EUR", {}),
        dedupe_max_entries=10_000,
        retained_windows=10,
    )


def feed(part: PartitionState, events: list[dict[str, Any]]) -> list[str]:
    """Apply events in order; the rejections as "reason: detail"."""
    rejected = []
    for event in events:
        try:
            part.apply(decode_event(orjson.dumps(event), ValidationLimits(), math.inf))
        except InvalidEvent as error:
            rejected.append(f"{error.reason}: {error.detail}")
    return rejected


def variance(values: list[KpiValue], window: str = "1mo") -> list[tuple[Any, int, Any]]:
    return [
        (v.value, v.revision, v.as_reported)
        for v in values
        if v.kpi == "budget_variance_ratio"
        and v.window == window
        and v.labels == (("cost_center", "CC-40"),)
    ]


# --- the reference case ------------------------------------------------------------------------

OCTOBER_ON_TIME = [
    budget("2026-10-05T09:00:00Z", "2026-10", "50000.00"),
    expense("2026-10-12T09:00:00Z", "20000.00"),
    expense("2026-10-26T09:00:00Z", "6000.00"),
    # November: the watermark passes October's end (Nov 1 00:00 + 60 s): October is final.
    expense("2026-11-03T09:00:00Z", "500.00"),
]
# Booked on Nov 3 (the watermark is Nov 3 08:59:55), it occurred on Oct 28: its minute, hour and
# day are long final, its month is final too but within the 92-day horizon.
LATE_OCTOBER = expense("2026-10-28T10:00:00Z", "1000.00")
# October: (26,000 - 50,000) / 50,000 = -0.48; with the late 1,000: (27,000 - 50,000) / 50,000
# = -0.46.
AS_REPORTED = Decimal("-0.48")
RESTATED = Decimal("-0.46")


def test_a_late_october_expense_restates_october_as_revision_2() -> None:
    part = partition()
    finalizer = Finalizer(CATALOG, part.windows, 60.0)
    assert feed(part, OCTOBER_ON_TIME) == []
    first = finalizer.close(part, part.watermark.value)
    assert variance(first) == [(AS_REPORTED, 1, None)]
    mark = part.watermark.value
    assert feed(part, [LATE_OCTOBER]) == []
    assert part.watermark.value == mark  # a late event moves no watermark
    again = finalizer.close(part, part.watermark.value)
    assert variance(again) == [(RESTATED, 2, AS_REPORTED)]
    october = part.windows.month.of_period("2026-10")
    assert ("1mo", october) in [(w.window, w.start) for w in finalizer.due]  # its partials too
    # Counted in the month only: October 28 has no day bucket and no opex row of its own.
    october_28 = part.windows.day.start_of(1_793_181_600)  # 2026-10-28T10:00:00Z
    assert ("1d", october_28) not in part.store.buckets
    assert not [v for v in again if v.window != "1mo"]


def test_the_backtest_gives_the_restated_october_whatever_the_cadence() -> None:
    lines = [orjson.dumps(e) for e in [*OCTOBER_ON_TIME, LATE_OCTOBER]]
    for every in (1, 2, 5, 10_000):
        out, err = io.StringIO(), io.StringIO()
        run_backtest(lines, Settings(), out, err, flush_every=every)
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        october = [
            (r["value"], r["window"])
            for r in rows
            if r["kpi"] == "budget_variance_ratio" and r["window_start"] == "2026-10-01T00:00:00Z"
        ]
        assert october == [("-0.4600000000", "1mo")], every
        # opex by day: Oct 12 20,000, Oct 26 6,000, Nov 3 500; none for the late Oct 28.
        days = {r["window_start"][:10] for r in rows if r["kpi"] == "opex" and r["window"] == "1d"}
        assert days == {"2026-10-12", "2026-10-26", "2026-11-03"}, every
        assert "0 rejected" in err.getvalue(), every


def test_a_late_expense_of_an_open_month_counts_in_the_month_only() -> None:
    part = partition()
    finalizer = Finalizer(CATALOG, part.windows, 60.0)
    assert feed(part, OCTOBER_ON_TIME[:3]) == []  # the watermark is Oct 26 08:59:55
    assert feed(part, [expense("2026-10-20T09:00:00Z", "1000.00")]) == []
    values = finalizer.close(part, math.inf)
    # October published once, with it: (27,000 - 50,000) / 50,000 = -0.46, revision 1.
    assert variance(values) == [(RESTATED, 1, None)]
    opex_days = sorted(
        (v.start, v.value) for v in values if v.kpi == "opex" and v.window == "1d" and v.value
    )
    assert [value for _, value in opex_days] == [Decimal("20000.00"), Decimal("6000.00")]


def test_a_late_expense_beyond_the_horizon_is_late_and_names_the_period() -> None:
    # October is final at Nov 1 00:01; with 5 days of horizon it can be restated until Nov 6
    # 00:01. On Nov 9 (watermark 08:59:55) a late October expense is beyond it.
    part = partition(restatement_days=5)
    finalizer = Finalizer(CATALOG, part.windows, 60.0)
    assert feed(part, [*OCTOBER_ON_TIME, expense("2026-11-09T09:00:00Z", "1.00")]) == []
    finalizer.close(part, part.watermark.value)
    [late] = feed(part, [LATE_OCTOBER | {"event_id": "late-beyond"}])
    assert late.startswith("late: its 1m window starting 1793181600 is final")
    assert "period 2026-10 is closed beyond the restatement horizon of 5 days" in late
    assert "it ended 2026-11-01T00:00:00Z; judged at 2026-11-09T08:59:55Z" in late
    assert [v for v in finalizer.close(part, math.inf) if v.revision > 1] == []  # no restatement
    assert "late-beyond" not in part.seen


def test_a_late_event_that_feeds_no_period_window_stays_late_and_says_so() -> None:
    part = partition()
    assert feed(part, OCTOBER_ON_TIME) == []
    [late] = feed(part, [order("2026-11-03T08:00:00Z")])
    assert late.startswith("late: its 1m window starting 1793692800 is final")  # Nov 3 08:00
    assert "a late order_placed counts only in a period window it feeds" in late
    assert late.endswith("and it feeds none")


def test_a_late_expense_is_deduplicated_and_so_is_an_on_time_one_resent_late() -> None:
    part = partition()
    finalizer = Finalizer(CATALOG, part.windows, 60.0)
    assert feed(part, OCTOBER_ON_TIME) == []
    finalizer.close(part, part.watermark.value)
    part.expire(part.watermark.value)  # what a worker does after each batch
    late = feed(part, [LATE_OCTOBER, LATE_OCTOBER, OCTOBER_ON_TIME[1]])
    # The late one once; its resend and the Oct 12 expense resent (its minute long final) are
    # duplicates: neither counts twice in October.
    assert [r.split(":")[0] for r in late] == ["duplicate", "duplicate"]
    assert variance(finalizer.close(part, part.watermark.value)) == [(RESTATED, 2, AS_REPORTED)]

    # The memory survives the changelog: a partition restored from its records knows both.
    restored = partition()
    restored.restore(part.checkpoint(next_offset=5))
    assert feed(restored, [LATE_OCTOBER, OCTOBER_ON_TIME[2]]) == [
        f"duplicate: event_id {LATE_OCTOBER['event_id']} was already counted",
        f"duplicate: event_id {OCTOBER_ON_TIME[2]['event_id']} was already counted",
    ]


def test_ids_of_period_flows_are_forgotten_once_their_period_is_past_the_horizon() -> None:
    part = partition(restatement_days=5)
    assert feed(part, OCTOBER_ON_TIME) == []
    on_time = OCTOBER_ON_TIME[1]["event_id"]
    order_id = "o-closer"
    assert feed(part, [order("2026-11-03T09:00:30Z") | {"event_id": order_id}]) == []
    feed(part, [expense("2026-11-05T00:00:00Z", "1.00")])
    part.expire(part.watermark.value)
    assert on_time in part.seen  # October can be restated until Nov 6 00:01
    assert order_id not in part.seen  # a plain flow: forgotten once its minute is final
    feed(part, [expense("2026-11-07T00:00:00Z", "1.00")])
    part.expire(part.watermark.value)
    assert on_time not in part.seen  # a resend now is late beyond the horizon anyway


def test_a_late_expense_restates_its_fiscal_period_quarter_and_year_to_date() -> None:
    # 4-4-5:1 (Monday nearest Jan 1): fiscal 2026 starts Mon 2025-12-29; P10 is weeks 40-43,
    # Mon 2026-09-28 to Mon 2026-10-26, P11 to 2026-11-23. An Oct 20 expense is in P10 and in
    # October. Budgets: October 50,000 (1mo), FY2026-P10 40,000 (fp).
    part = partition(fiscal="4-4-5:1")
    finalizer = Finalizer(FISCAL, part.windows, 60.0)
    events = [
        budget("2026-10-05T09:00:00Z", "2026-10", "50000.00"),
        budget("2026-10-05T09:00:01Z", "FY2026-P10", "40000.00"),
        expense("2026-10-12T09:00:00Z", "20000.00"),
        expense("2026-11-03T09:00:00Z", "500.00"),  # P11: P10 (and October) final
    ]
    assert feed(part, events) == []
    first = finalizer.close(part, part.watermark.value)
    # fp P10: (20,000 - 40,000) / 40,000 = -0.5; fytd P10: only P10 has a budget: -0.5 too.
    assert variance(first, "fp") == [(Decimal("-0.5"), 1, None)]
    assert variance(first, "fytd") == [(Decimal("-0.5"), 1, None)]
    assert feed(part, [expense("2026-10-20T09:00:00Z", "2000.00")]) == []
    again = finalizer.close(part, part.watermark.value)
    # fp and fytd: (22,000 - 40,000) / 40,000 = -0.45; October: (22,000 - 50,000) / 50,000
    # = -0.56 (as reported (20,000 - 50,000) / 50,000 = -0.6).
    assert variance(again, "fp") == [(Decimal("-0.45"), 2, Decimal("-0.5"))]
    assert variance(again, "fytd") == [(Decimal("-0.45"), 2, Decimal("-0.5"))]
    assert variance(again, "1mo") == [(Decimal("-0.56"), 2, Decimal("-0.6"))]


def test_partials_of_a_restated_period_go_out_even_when_this_worker_has_no_budget() -> None:
    # The cost center's budget is elsewhere (another worker): this worker's October row has no
    # value (budget 0), yet the late expense changes its actual, so the row is restated and
    # this partition's October partial goes out again for the merge stage to sum.
    part = partition()
    finalizer = Finalizer(CATALOG, part.windows, 60.0)
    assert feed(part, OCTOBER_ON_TIME[1:]) == []
    first = finalizer.close(part, part.watermark.value)
    [row] = [v for v in first if v.kpi == "budget_variance_ratio" and v.window == "1mo"]
    assert (row.value, row.numerator, row.denominator) == (None, Decimal("26000.00"), Decimal(0))
    assert feed(part, [LATE_OCTOBER]) == []
    again = finalizer.close(part, part.watermark.value)
    assert [(v.value, v.numerator, v.revision) for v in again] == [(None, Decimal("27000.00"), 2)]
    october = part.windows.month.of_period("2026-10")
    assert [(w.window, w.start) for w in finalizer.due] == [("1mo", october)]


def test_the_cached_id_horizon_agrees_with_a_fresh_one_in_any_order() -> None:
    # Berlin, 4-4-5:1 and months: spans of 1mo and fp overlap without matching; hopping back
    # and forth across their boundaries must not reuse a stale answer.
    windows = Windows.for_timezone(ZoneInfo("Europe/Berlin"), 30, "4-4-5:1")
    cached = KeptUntil(windows, ("1mo", "fp"), 60.0)
    day = 86400
    base = 1_790_805_600  # 2026-10-01T00:00:00+02:00
    for offset in (0, 25 * day, -1, 31 * day + 3600, 26 * day, 5, -40 * day, 27 * day):
        at = base + offset
        assert cached(at) == KeptUntil(windows, ("1mo", "fp"), 60.0)(at), offset
    # Independently for Oct 1 (Berlin): October ends Nov 1 00:00 CET (23:00Z Oct 31); fp P10
    # of 4-4-5:1 ends Mon Oct 26 00:00 CET; the later is October's: + 60 s + 30 days.
    assert cached(base) == 1_793_487_600 + 60 + 30 * day
