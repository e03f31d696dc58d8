"""Finance periods as finance keeps them (issue 15): folded budgets add up; an event of a period
already final restates it (a new revision) within the restatement horizon, and is dead-lettered
`late`, period named, beyond it; the final rows do not depend on when windows were finalized.

Every expected figure is computed by hand in the comments.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import orjson

from streams.core.measures import Latest, LatestBy, decode_acc, encode_acc, merge_acc
from streams.offline.backtest import run_backtest
from streams.settings import Settings

_ids = iter(range(1, 1_000_000))


def budget(at: str, cost_center: str, period: str, amount: str) -> dict[str, Any]:
    return {
        "type": "budget_set",
        "event_id": f"b-{next(_ids)}",
        "occurred_at": at,
        "source": "fpa",
        "schema_version": 1,
        "dimensions": {"business_unit": "corp", "region": "de", "cost_center": cost_center},
        "period": period,
        "amount": amount,
        "currency": "EUR",
    }


def expense(at: str, cost_center: str, amount: str) -> dict[str, Any]:
    return {
        "type": "expense_posted",
        "event_id": f"e-{next(_ids)}",
        "occurred_at": at,
        "source": "erp",
        "schema_version": 1,
        "dimensions": {"business_unit": "corp", "region": "de", "cost_center": cost_center},
        "category": "travel",
        "amount": amount,
        "currency": "EUR",
    }


def backtest(events: list[dict[str, Any]], **settings: Any) -> tuple[list[dict[str, str]], str]:
    out, err = io.StringIO(), io.StringIO()
    lines = [orjson.dumps(e) for e in events]
    run_backtest(lines, Settings(**settings), out, err)
    return list(csv.DictReader(io.StringIO(out.getvalue()))), err.getvalue()


def variances(rows: list[dict[str, str]]) -> dict[tuple[str, str], Decimal]:
    return {
        (r["window_start"], r["dimensions"]): Decimal(r["value"])
        for r in rows
        if r["kpi"] == "budget_variance_ratio"
    }


def test_budgets_folded_into_other_add_up_per_period() -> None:
    # Cap 1: CC-1 takes the one cost-center value; CC-2 and CC-3 fold into `other`.
    events = [
        budget("2026-10-01T08:00:00Z", "CC-1", "2026-10", "1000.00"),
        expense("2026-10-01T09:00:00Z", "CC-1", "1100.00"),
        budget("2026-10-02T08:00:00Z", "CC-2", "2026-10", "3000.00"),
        budget("2026-10-03T08:00:00Z", "CC-3", "2026-10", "5000.00"),
        expense("2026-10-04T08:00:00Z", "CC-2", "2000.00"),
        expense("2026-10-05T08:00:00Z", "CC-3", "4000.00"),
        # CC-2 revises its budget: its own register is replaced, CC-3's stays.
        budget("2026-10-06T08:00:00Z", "CC-2", "2026-10", "2000.00"),
        budget("2026-10-07T08:00:00Z", "CC-4", "2026-11", "700.00"),
        expense("2026-11-02T08:00:00Z", "CC-4", "350.00"),
    ]
    rows, _ = backtest(events, max_dimension_values=1)
    got = variances(rows)
    # CC-1: (1100 - 1000) / 1000 = 0.1.
    assert got[("2026-10-01T00:00:00Z", "cost_center=CC-1")] == Decimal("0.1")
    # other, October: actual 2000 + 4000 = 6000, budget 2000 (CC-2, revised) + 5000 = 7000:
    # (6000 - 7000) / 7000 = -0.142857142857... -> -0.1428571429 (10 places, half-even).
    assert got[("2026-10-01T00:00:00Z", "cost_center=other")] == Decimal("-0.1428571429")
    # other, November: (350 - 700) / 700 = -0.5.
    assert got[("2026-11-01T00:00:00Z", "cost_center=other")] == Decimal("-0.5")


def test_the_issue_case_cap_1_gives_minus_a_quarter() -> None:
    events = [
        budget("2026-10-01T08:00:00Z", "CC-1", "2026-10", "100.00"),
        budget("2026-10-02T08:00:00Z", "CC-2", "2026-10", "3000.00"),
        expense("2026-10-03T08:00:00Z", "CC-2", "2000.00"),
        budget("2026-10-04T08:00:00Z", "CC-3", "2026-10", "5000.00"),
        expense("2026-10-05T08:00:00Z", "CC-3", "4000.00"),
    ]
    rows, _ = backtest(events, max_dimension_values=1)
    # (2000 + 4000 - (3000 + 5000)) / 8000 = -2000 / 8000 = -0.25 (not (6000 - 5000) / 5000).
    assert variances(rows)[("2026-10-01T00:00:00Z", "cost_center=other")] == Decimal("-0.25")


def test_folded_registers_merge_per_origin_across_partitions_and_survive_encoding() -> None:
    # Partition A folded CC-2 (3000 at t=10, then 2500 at t=30); partition B folded CC-3 (5000
    # at t=20) and saw an older CC-2 register (9999 at t=5, superseded by A's t=30).
    a = LatestBy((("CC-2", Latest(30.0, Decimal("2500"))),))
    b = LatestBy((("CC-2", Latest(5.0, Decimal("9999"))), ("CC-3", Latest(20.0, Decimal("5000")))))
    merged = merge_acc(a, b)
    assert isinstance(merged, LatestBy)
    assert merged.value == Decimal("7500")  # 2500 + 5000
    assert merge_acc(b, a) == merged  # order does not matter
    assert decode_acc(orjson.loads(orjson.dumps(encode_acc(merged)))) == merged
    # A cost center literally named "other" (unfolded, a plain register) adds as its own origin.
    plain = Latest(40.0, Decimal("100"))
    assert isinstance(both := merge_acc(plain, merged), LatestBy)
    assert both.value == Decimal("7600")
    assert merge_acc(merged, plain) == both
