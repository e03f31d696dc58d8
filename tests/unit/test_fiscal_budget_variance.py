"""Budget variance in fiscal windows (`PULSE_FISCAL_CALENDAR`): `pulse backtest` over two fiscal
years, one of them of 53 weeks, against an independent computation that walks the days with
`datetime` (not `streams.core.fiscal`), in Europe/Berlin with every expense at 00:30 local time
(the previous day in UTC, so a period taken in UTC would be off by a day at each boundary).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core import Finalizer, FxTable, PartitionState, Watermark, Windows, compile_catalog
from streams.core.kpi_values import Labels
from streams.core.validation import ValidationLimits, decode_event
from streams.errors import ConfigError, InvalidEvent
from streams.offline.backtest import run_backtest
from streams.settings import Settings, load_settings

BERLIN = ZoneInfo("Europe/Berlin")
Period = tuple[int, int]
"""(fiscal year, period 1-12)."""


def starts_week_year(day: date, month: int, weekday: int) -> int | None:
    """The fiscal year `day` starts (a `weekday` at most 3 days from the 1st of `month`)."""
    if day.weekday() != weekday:
        return None
    for year in (day.year - 1, day.year, day.year + 1):
        if abs((day - date(year, month, 1)).days) <= 3:
            return year
    return None


def walk(calendar: str, first: date, last: date) -> dict[date, Period]:
    """{day: (fiscal year, period)} for first <= day <= last, by walking the days: a new year
    begins on the day the calendar says; within it, weeks (or months) are counted off."""
    kind, month_text, *rest = calendar.split(":")
    month = int(month_text)
    owner: dict[date, Period] = {}
    if kind == "months":
        day = first
        while day <= last:
            year = day.year if day.month >= month else day.year - 1
            owner[day] = (year, (day.month - month) % 12 + 1)
            day += timedelta(days=1)
        return owner
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(rest[0] if rest else "mon")
    weeks = [int(n) for n in kind.split("-")] * 4
    week_period = [p for p, count in enumerate(weeks, start=1) for _ in range(count)]
    year = starts_week_year(first, month, weekday)
    assert year is not None, "the walk starts on the first day of a fiscal year"
    day, index = first, 0
    while day <= last:
        started = starts_week_year(day, month, weekday)
        if started is not None and day != first:
            year, index = started, 0
        week = index // 7
        owner[day] = (year, week_period[week] if week < 52 else 12)  # the 53rd week: period 12
        day += timedelta(days=1)
        index += 1
    return owner


def utc(day: date) -> str:
    local = datetime(day.year, day.month, day.day, tzinfo=BERLIN)
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(day: date, hour: int, minute: int) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN).isoformat()


_ids = iter(range(1, 1_000_000))


def event(type_: str, when: str, **fields: Any) -> bytes:
    return orjson.dumps(
        {
            "type": type_,
            "event_id": f"{type_}-{next(_ids)}",
            "occurred_at": when,
            "source": "erp",
            "schema_version": 1,
            "dimensions": {"business_unit": "corp", "region": "de", "cost_center": "ops"},
            "currency": "EUR",
            **fields,
        }
    )


def spend(day: date) -> Decimal:
    return Decimal(day.toordinal() % 89 + 10) + Decimal("0.25")


def budget_of(period: Period) -> Decimal:
    year, number = period
    return Decimal(900 + 37 * number + 11 * (year % 10))


def ratio(spent: Decimal, budget: Decimal) -> Decimal:
    return ((spent - budget) / budget).quantize(Decimal("1e-10"), rounding=ROUND_HALF_EVEN)


def ledger(owner: dict[date, Period], label: bool) -> Iterator[bytes]:
    """A budget on the first day of each period (00:10 local), an expense every day (00:30)."""
    seen: set[Period] = set()
    for day in sorted(owner):
        period = owner[day]
        if period not in seen:
            seen.add(period)
            year, number = period
            # A fiscal period by its label; for month calendars also by its calendar month.
            name = f"FY{year}-P{number:02d}" if label else f"{day.year}-{day.month:02d}"
            yield event("budget_set", at(day, 0, 10), period=name, amount=str(budget_of(period)))
        yield event("expense_posted", at(day, 0, 30), category="travel", amount=str(spend(day)))


def backtest(lines: list[bytes], **settings: Any) -> tuple[list[dict[str, str]], str]:
    out, err = io.StringIO(), io.StringIO()
    run_backtest(lines, Settings(business_timezone="Europe/Berlin", **settings), out, err)
    return list(csv.DictReader(io.StringIO(out.getvalue()))), err.getvalue()


def expected_rows(owner: dict[date, Period]) -> set[tuple[str, str, str, str]]:
    """(window, window_start, window_end, value) of every fiscal row, from the walk."""
    days: dict[Period, list[date]] = {}
    for day, period in owner.items():
        days.setdefault(period, []).append(day)
    span = {p: (min(ds), max(ds) + timedelta(days=1)) for p, ds in days.items()}
    spent = {p: sum((spend(d) for d in ds), Decimal(0)) for p, ds in days.items()}
    rows: set[tuple[str, str, str, str]] = set()
    for (year, number), (first, end) in span.items():
        rows.add(
            ("fp", utc(first), utc(end), str(ratio(spent[year, number], budget_of((year, number)))))
        )
        to_date = [(year, n) for n in range(1, number + 1)]
        rows.add(
            (
                "fytd",
                utc(first),
                utc(end),
                str(
                    ratio(
                        sum((spent[p] for p in to_date), Decimal(0)),
                        sum((budget_of(p) for p in to_date), Decimal(0)),
                    )
                ),
            )
        )
        quarter = [(year, n) for n in range((number - 1) // 3 * 3 + 1, (number - 1) // 3 * 3 + 4)]
        if number % 3 == 0:  # the quarter's last period: the walk holds all of it
            rows.add(
                (
                    "fq",
                    utc(span[quarter[0]][0]),
                    utc(end),
                    str(
                        ratio(
                            sum((spent[p] for p in quarter), Decimal(0)),
                            sum((budget_of(p) for p in quarter), Decimal(0)),
                        )
                    ),
                )
            )
    return rows


def normal(value: str) -> str:
    return str(Decimal(value).quantize(Decimal("1e-10")))


@pytest.mark.parametrize(
    ("calendar", "first", "last", "label"),
    [
        # Fiscal 2020 from the Monday nearest Jan 1 runs Dec 30, 2019 - Jan 3, 2021: 53 weeks
        # (period 12 has 6); fiscal 2021 runs Jan 4, 2021 - Jan 2, 2022 (52 weeks).
        ("4-4-5:1", date(2019, 12, 30), date(2022, 1, 2), True),
        # NRF: fiscal 2023 (53 weeks) Jan 29, 2023 - Feb 3, 2024, and fiscal 2024.
        ("4-5-4:2:sun", date(2023, 1, 29), date(2025, 2, 1), True),
        # Fiscal years of calendar months from April, budgets named by month.
        ("months:4", date(2024, 4, 1), date(2026, 3, 31), False),
    ],
)
def test_fiscal_windows_agree_with_a_walk_over_two_years(
    calendar: str, first: date, last: date, label: bool
) -> None:
    owner = walk(calendar, first, last)
    years = {year for year, _ in owner.values()}
    assert len(years) == 2
    if not calendar.startswith("months"):
        assert 371 in [sum(1 for p in owner.values() if p[0] == y) for y in years]
    rows, err = backtest(list(ledger(owner, label)), fiscal_calendar=calendar)
    assert "0 rejected" in err
    got = {
        (r["window"], r["window_start"], r["window_end"], normal(r["value"]))
        for r in rows
        if r["kpi"] == "budget_variance_ratio" and r["window"] in {"fp", "fq", "fytd"}
    }
    want = {(w, s, e, normal(v)) for w, s, e, v in expected_rows(owner)}
    assert len(want) == 24 + 24 + 8
    assert got == want


def test_without_a_fiscal_calendar_nothing_changes_and_a_fiscal_budget_is_refused() -> None:
    owner = walk("4-4-5:1", date(2019, 12, 30), date(2020, 2, 28))
    rows, err = backtest(list(ledger(owner, label=True)))
    assert not [r for r in rows if r["window"] in {"fp", "fq", "fytd"}]
    assert "schema_violation: period FY2020-P01 names a fiscal period and " in err
    assert "PULSE_FISCAL_CALENDAR is not set" in err


@pytest.mark.parametrize("value", ["4-4-6:2", "months:13", "months:4:sun", "quarterly"])
def test_a_bad_fiscal_calendar_fails_at_start_naming_the_setting(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_FISCAL_CALENDAR", value)
    with pytest.raises(ConfigError, match="PULSE_FISCAL_CALENDAR"):
        load_settings()


def test_the_setting_is_off_by_default() -> None:
    assert Settings().fiscal_calendar == ""


# --- property: any finalization cadence gives the same final fiscal rows ---------------------

PROPERTY_CALENDAR = "4-4-5:10"
"""Fiscal 2025 from Monday Sep 29, 2025 (the Monday nearest Oct 1): P01 to Oct 27, P02 to
Nov 24, P03 (5 weeks) to Dec 29, P04 to Jan 26, 2026."""
PROPERTY_DAY0 = int(datetime(2025, 9, 29, tzinfo=UTC).timestamp())


@st.composite
def fiscal_streams(draw: st.DrawFn) -> list[bytes]:
    """Budgets (revised, for past, present and coming fiscal periods, some by calendar month)
    and expenses over ~100 days in arrival order, with small steps back that are not late and
    larger ones that are (a late expense restates its fiscal period within the horizon)."""
    lines: list[bytes] = []
    at = PROPERTY_DAY0
    for number in range(draw(st.integers(1, 40))):
        at += draw(st.sampled_from([0, 30, 3600, 86400, 5 * 86400, 12 * 86400]))
        back = draw(st.sampled_from([0, 0, 0, 10, 300, 3 * 86400, 25 * 86400]))
        stamp = datetime.fromtimestamp(at - back, UTC).isoformat()
        center = draw(st.sampled_from(["CC-1", "CC-2"]))
        amount = f"{draw(st.integers(1, 9000))}.{draw(st.integers(0, 99)):02d}"
        body: dict[str, Any] = {
            "event_id": f"p-{number}",
            "occurred_at": stamp,
            "source": "ledger",  # one source: watermark = newest - 5 s
            "schema_version": 1,
            "dimensions": {"business_unit": "corp", "region": "de", "cost_center": center},
            "currency": "EUR",
            "amount": amount,
        }
        if draw(st.booleans()):
            period = draw(st.sampled_from(["FY2025-P01", "FY2025-P02", "FY2025-P03", "2025-11"]))
            body |= {"type": "budget_set", "period": period}
        else:
            body |= {"type": "expense_posted", "category": "travel"}
        lines.append(orjson.dumps(body))
    return lines


def fiscal_cadence(
    lines: list[bytes], points: set[int]
) -> tuple[dict[tuple[str, int, Labels], tuple[Any, ...]], list[str]]:
    """Final fiscal rows (the last revision of each) and rejections, finalizing after the
    lines whose index is in `points` and at the end."""
    catalog = compile_catalog(fiscal=True)
    windows = Windows.for_timezone(ZoneInfo("UTC"), 20, PROPERTY_CALENDAR)
    part = PartitionState(
        catalog,
        windows,
        watermark=Watermark(5.0, 60.0),
        fx=FxTable("EUR", {}),
        dedupe_max_entries=10_000,
        retained_windows=10,
    )
    finalizer = Finalizer(catalog, windows, 60.0)
    rows: dict[tuple[str, int, Labels], tuple[Any, ...]] = {}
    rejected: list[str] = []

    def close(mark: float) -> None:
        for v in finalizer.close(part, mark):
            if v.window in {"fp", "fq", "fytd", "1mo"}:
                rows[(v.window, v.start, v.labels)] = (v.value, v.numerator, v.denominator)

    for index, line in enumerate(lines):
        try:
            part.apply(decode_event(line, ValidationLimits(), math.inf))
        except InvalidEvent as error:
            rejected.append(f"{error.reason}: {error.detail}")
        if index in points:
            close(part.watermark.value)
    close(math.inf)
    return rows, rejected


@settings(max_examples=100, deadline=None, derandomize=True)
@given(lines=fiscal_streams(), points=st.sets(st.integers(0, 40)))
def test_any_finalization_cadence_gives_the_same_final_fiscal_rows(
    lines: list[bytes], points: set[int]
) -> None:
    once, rejected_once = fiscal_cadence(lines, set())
    every, rejected_every = fiscal_cadence(lines, set(range(len(lines))))
    some, rejected_some = fiscal_cadence(lines, points)
    assert rejected_once == rejected_every == rejected_some
    assert every == once
    assert some == once


def local_midnight(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=BERLIN).timestamp())


def test_the_windows_a_budget_period_names() -> None:
    june = (local_midnight(2026, 6, 1), local_midnight(2026, 7, 1))
    # months:4: fiscal 2026 starts in April, so its period 3 is June, the same span as 2026-06.
    months = Windows.for_timezone(BERLIN, 92, "months:4")
    assert months.period_windows("FY2026-P03") == [("1mo", *june), ("fp", *june)]
    assert months.period_windows("2026-06") == [("1mo", *june), ("fp", *june)]
    # 4-4-5:1: period 3 of fiscal 2026 is Feb 23 - Mar 30, 2026 (5 weeks); a calendar month's
    # budget has no fiscal period.
    weeks = Windows.for_timezone(BERLIN, 92, "4-4-5:1")
    p03 = (local_midnight(2026, 2, 23), local_midnight(2026, 3, 30))
    assert weeks.period_windows("FY2026-P03") == [("fp", *p03)]
    assert weeks.period_windows("2026-06") == [("1mo", *june)]
    assert Windows.for_timezone(BERLIN, 92).period_windows("2026-06") == [("1mo", *june)]


def test_fiscal_periods_survive_the_changelog() -> None:
    # A partition rebuilt from its changelog records (JSON, as written to Kafka) gives the same
    # fiscal rows as the one that counted the events.
    owner = walk("4-4-5:1", date(2019, 12, 30), date(2020, 6, 28))
    lines = list(ledger(owner, label=True))
    counted = _partition()
    records = []
    for index, line in enumerate(lines):
        counted.apply(decode_event(line, ValidationLimits(), math.inf))
        if index % 50 == 49:
            records.append(orjson.loads(orjson.dumps(counted.checkpoint(index + 1))))
    records.append(orjson.loads(orjson.dumps(counted.checkpoint(len(lines)))))
    rebuilt = _partition()
    for record in records:
        rebuilt.restore(record)

    def fiscal_rows(part: PartitionState) -> list[tuple[str, int, Any]]:
        finalizer = Finalizer(part.catalog, part.windows, 60.0)
        return [
            (v.window, v.start, v.value)
            for v in finalizer.close(part, math.inf)
            if v.window in {"fp", "fq", "fytd"}
        ]

    rows = fiscal_rows(counted)
    assert len(rows) == 6 + 2 + 6  # P01-P06 (to Jun 29, 2020), Q1 and Q2, each year to date
    assert fiscal_rows(rebuilt) == rows


def _partition(calendar: str = "4-4-5:1") -> PartitionState:
    catalog = compile_catalog(fiscal=True)
    return PartitionState(
        catalog,
        Windows.for_timezone(BERLIN, 92, calendar),
        watermark=Watermark(5.0, 60.0),
        fx=FxTable("EUR", {}),
        dedupe_max_entries=100_000,
        retained_windows=10,
    )
