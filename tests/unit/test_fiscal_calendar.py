"""Fiscal calendars (`PULSE_FISCAL_CALENDAR`) against an independent computation over two years
(a 53-week year included) in Europe/Berlin, and against the published NRF 4-5-4 calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from streams.core.fiscal import FiscalCalendar, FiscalSpec, fiscal_windows
from streams.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def local(day: date, hour: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN).timestamp()


def independent_week_periods(
    pattern: tuple[int, int, int], month: int, weekday: int, years: range
) -> dict[date, tuple[int, int, date, date]]:
    """{day: (fiscal year, period, period start, period end)} by brute force: a year starts on
    the `weekday` closest to the 1st of `month` (scanning the 7 candidates), each week of the
    year belongs to the period its index falls in, and the 53rd week to period 12."""

    def start(year: int) -> date:
        anchor = date(year, month, 1)
        candidates = [anchor + timedelta(days=k) for k in range(-3, 4)]
        return next(d for d in candidates if d.weekday() == weekday)

    table: dict[date, tuple[int, int, date, date]] = {}
    for year in years:
        first, following = start(year), start(year + 1)
        week_owner: list[int] = []
        for period, count in enumerate(list(pattern) * 4, start=1):
            week_owner += [period] * count
        if (following - first).days // 7 == 53:
            week_owner.append(12)
        bounds: dict[int, tuple[date, date]] = {}
        for week, period in enumerate(week_owner):
            monday = first + timedelta(weeks=week)
            lo, hi = bounds.get(period, (monday, monday))
            bounds[period] = (min(lo, monday), max(hi, monday + timedelta(weeks=1)))
        for day in days(first, following - timedelta(days=1)):
            period = week_owner[(day - first).days // 7]
            table[day] = (year, period, *bounds[period])
    return table


def test_nrf_4_5_4_matches_the_published_calendar() -> None:
    # NRF retail calendar (4-5-4, weeks Sunday to Saturday, year starting the Sunday nearest
    # Feb 1): fiscal 2023 is Jan 29, 2023 - Feb 3, 2024, a 53-week year; fiscal 2024 starts
    # Feb 4, 2024. February 2023 is Jan 29 - Feb 25 (4 weeks), March Feb 26 - Apr 1 (5 weeks),
    # April Apr 2 - Apr 29; January 2024 (period 12) has the 53rd week: Dec 31 - Feb 3.
    calendar = FiscalCalendar(FiscalSpec.parse("4-5-4:2:sun"), BERLIN)
    fy23 = calendar.periods(2023)
    assert (fy23[0].start, fy23[0].end) == (date(2023, 1, 29), date(2023, 2, 26))
    assert (fy23[1].start, fy23[1].end) == (date(2023, 2, 26), date(2023, 4, 2))
    assert (fy23[2].start, fy23[2].end) == (date(2023, 4, 2), date(2023, 4, 30))
    assert (fy23[11].start, fy23[11].end) == (date(2023, 12, 31), date(2024, 2, 4))
    assert calendar.year_start(2024) == date(2024, 2, 4)
    assert (calendar.periods(2024)[11].end - calendar.periods(2024)[11].start).days == 28


@pytest.mark.parametrize(
    ("text", "pattern", "month", "weekday", "first"),
    [
        # Two years each, holding a 53-week year: NRF fiscal 2023 (Jan 29, 2023 - Feb 3, 2024),
        # fiscal 2026 from the Monday nearest Jan 1 (Dec 29, 2025 - Jan 3, 2027), fiscal 2024
        # from the Saturday nearest Oct 1 (Sep 28, 2024 - Oct 3, 2025).
        ("4-5-4:2:sun", (4, 5, 4), 2, 6, date(2023, 3, 1)),
        ("4-4-5:1", (4, 4, 5), 1, 0, date(2025, 6, 1)),
        ("5-4-4:10:sat", (5, 4, 4), 10, 5, date(2024, 3, 1)),
    ],
)
def test_week_calendars_agree_with_brute_force_over_two_years_with_a_53_week_one(
    text: str, pattern: tuple[int, int, int], month: int, weekday: int, first: date
) -> None:
    windows = fiscal_windows(text, BERLIN)
    want = independent_week_periods(pattern, month, weekday, range(2020, 2030))
    span = days(first, first + timedelta(days=2 * 365))
    years = {want[d][0] for d in span}
    assert 371 in [sum(1 for v in want.values() if v[0] == year) for year in years]
    for day in span:
        year, period, start, end = want[day]
        for hour in (0, 12, 23):
            at = local(day, hour)
            assert windows["fp"].start_of(at) == local(start), (day, hour)
        found = windows["fp"].calendar.period_of(local(day, 12))
        assert (found.year, found.number) == (year, period), day
        assert windows["fp"].end_of(windows["fp"].start_of(local(day))) == local(end)
        quarter_first = (period - 1) // 3 * 3 + 1
        quarter_start = min(d for d, v in want.items() if v[:2] == (year, quarter_first))
        assert windows["fq"].start_of(local(day, 12)) == local(quarter_start)
        assert windows["fy"].start_of(local(day, 12)) == local(
            min(d for d, v in want.items() if v[0] == year)
        )


def test_periods_are_dst_correct_in_the_business_time_zone() -> None:
    # 4-4-5 from the Monday nearest Jan 1: fiscal 2024 starts Jan 1, 2024; period 3 (5 weeks)
    # is Feb 26 - Apr 1, 2024 and holds the spring change (Mar 31): 35 days less one hour.
    window = fiscal_windows("4-4-5:1", BERLIN)["fp"]
    start = window.start_of(local(date(2024, 3, 15), 12))
    assert start == local(date(2024, 2, 26))
    assert window.end_of(start) - start == 35 * 86400 - 3600
    # The autumn change (Oct 27, 2024) lies in period 10: Sep 30 - Oct 28 (4 weeks) + 1 hour.
    start = window.start_of(local(date(2024, 10, 27), 12))
    assert window.end_of(start) - start == 28 * 86400 + 3600


def test_month_calendars_start_in_any_month() -> None:
    windows = fiscal_windows("months:4", BERLIN)
    for day in days(date(2023, 1, 1), date(2024, 12, 31)):
        year = day.year if day.month >= 4 else day.year - 1
        number = (day.month - 4) % 12 + 1
        found = windows["fp"].calendar.period_of(local(day, 12))
        assert (found.year, found.number) == (year, number), day
        assert windows["fp"].start_of(local(day, 12)) == local(day.replace(day=1))
        quarter_month = (number - 1) // 3 * 3 + 4
        quarter_start = date(year + (quarter_month - 1) // 12, (quarter_month - 1) % 12 + 1, 1)
        assert windows["fq"].start_of(local(day, 12)) == local(quarter_start), day
        assert windows["fy"].start_of(local(day, 12)) == local(date(year, 4, 1))
    assert FiscalCalendar(FiscalSpec.parse("months:4"), BERLIN).periods(2024)[0].label == (
        "FY2024-P01"
    )


@pytest.mark.parametrize("text", ["4-4-6:2", "months:13", "months:4:sun", "4-4-5", "445:1:mon"])
def test_a_bad_fiscal_calendar_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match="PULSE_FISCAL_CALENDAR"):
        FiscalSpec.parse(text)


def test_no_fiscal_calendar_means_no_fiscal_windows() -> None:
    assert fiscal_windows("", BERLIN) == {}
