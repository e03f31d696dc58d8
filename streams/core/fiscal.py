"""Fiscal calendars (`PULSE_FISCAL_CALENDAR`): fiscal periods, quarters and years as windows.

With the setting on, budget variance is also kept per fiscal period (`fp`), and rolled up per
fiscal quarter (`fq`) and year to date (`fytd`) from the periods' buckets
(`streams.core.kpi_values.period_values`); docs/kpi-semantics.md, "Fiscal calendars".

Two families, both in the business time zone (boundaries at local midnight, so DST-correct like
`1d` and `1mo`):

- `months:M` — a fiscal year of 12 calendar months starting on the 1st of month M (1-12).
- `4-4-5:M[:WD]`, `4-5-4:M[:WD]`, `5-4-4:M[:WD]` — a 52/53-week year that starts on the weekday
  WD (`mon`..`sun`, default `mon`) nearest the 1st of month M (at most 3 days before or after:
  the "nearest" rule of retail calendars; `4-5-4:2:sun` is the NRF calendar). Each quarter is 13
  weeks split as the pattern says; a year is 53 weeks when the next year's start is 371 days
  later, and the extra week goes to period 12.

A fiscal year is named by the calendar year it starts in (NRF's fiscal 2023 runs from
2023-01-29 to 2024-02-03). Windows: `fp` (period 1-12), `fq` (quarter 1-4), `fy` (year); the
year-to-date of a period is [start of its year, end of the period).

Window instances: `fp` and `fq` are [start, end) of their period or quarter; an `fytd` instance
is named by its period (start and end of the period, as balances carry their day) and covers
[start of the fiscal year, end of the period) (`FiscalWindow.since`). `fy` is not published; it
spans a year. A budget names its period as `FY2026-P03` (`period_windows`: which windows a
`budget_set.period` counts in).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from streams.core.windows import CalendarMonth
from streams.errors import ConfigError, InvalidEvent

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PATTERNS = {"4-4-5": (4, 4, 5), "4-5-4": (4, 5, 4), "5-4-4": (5, 4, 4)}
FISCAL_WINDOWS = ("fp", "fq", "fytd")
"""The window names a fiscal calendar adds to budget variance (period, quarter, year to date)."""
LABEL = re.compile(r"^FY(\d{4})-P(0[1-9]|1[0-2])$")
"""A fiscal period as a `budget_set.period` names it: `FY2026-P03`."""
SPEC = re.compile(r"^(months|4-4-5|4-5-4|5-4-4):(1[0-2]|[1-9])(?::(mon|tue|wed|thu|fri|sat|sun))?$")


@dataclass(frozen=True, slots=True)
class FiscalSpec:
    """A parsed `PULSE_FISCAL_CALENDAR` (see the module docstring)."""

    weeks: tuple[int, int, int] | None
    """Weeks per period of each quarter; None: calendar months."""
    start_month: int
    weekday: int = 0
    """0 = Monday (week-based calendars only)."""

    @classmethod
    def parse(cls, text: str) -> FiscalSpec:
        found = SPEC.match(text.strip().lower())
        if found is None:
            raise ConfigError(
                f"PULSE_FISCAL_CALENDAR={text!r}: expected months:M or 4-4-5|4-5-4|5-4-4:M[:WD] "
                "(M the start month 1-12, WD mon..sun), e.g. months:4 or 4-5-4:2:sun"
            )
        kind, month, weekday = found.groups()
        if kind == "months" and weekday is not None:
            raise ConfigError(
                f"PULSE_FISCAL_CALENDAR={text!r}: a weekday is for 4-4-5 style calendars only"
            )
        return cls(
            None if kind == "months" else PATTERNS[kind],
            int(month),
            WEEKDAYS.index(weekday) if weekday else 0,
        )


@dataclass(frozen=True, slots=True)
class FiscalPeriod:
    """One fiscal period as dates (local): [start, end)."""

    year: int
    number: int
    """1-12."""
    start: date
    end: date

    @property
    def quarter(self) -> int:
        return (self.number - 1) // 3 + 1

    @property
    def label(self) -> str:
        return f"FY{self.year}-P{self.number:02d}"


@dataclass(slots=True)
class FiscalCalendar:
    spec: FiscalSpec
    tz: ZoneInfo
    _years: dict[int, tuple[FiscalPeriod, ...]] = field(default_factory=dict)

    def year_start(self, year: int) -> date:
        first = date(year, self.spec.start_month, 1)
        if self.spec.weeks is None:
            return first
        delta = (self.spec.weekday - first.weekday()) % 7
        return first + timedelta(days=delta - 7 if delta > 3 else delta)

    def periods(self, year: int) -> tuple[FiscalPeriod, ...]:
        """The 12 periods of fiscal year `year` (cached)."""
        cached = self._years.get(year)
        if cached is not None:
            return cached
        start = self.year_start(year)
        bounds = [start]
        if self.spec.weeks is None:
            for k in range(1, 13):
                index = start.year * 12 + start.month - 1 + k
                bounds.append(date(index // 12, index % 12 + 1, 1))
        else:
            weeks = list(self.spec.weeks) * 4
            if (self.year_start(year + 1) - start).days == 371:
                weeks[-1] += 1  # the 53rd week
            for count in weeks:
                bounds.append(bounds[-1] + timedelta(weeks=count))
        periods = tuple(FiscalPeriod(year, n + 1, bounds[n], bounds[n + 1]) for n in range(12))
        self._years[year] = periods
        return periods

    def period_of_date(self, day: date) -> FiscalPeriod:
        year = day.year  # a week-based year may start a few days before Jan 1 or after
        if day >= self.year_start(year + 1):
            year += 1
        elif day < self.year_start(year):
            year -= 1
        periods = self.periods(year)
        return next((p for p in periods if day < p.end), periods[-1])

    def period_of(self, timestamp: float) -> FiscalPeriod:
        return self.period_of_date(datetime.fromtimestamp(timestamp, self.tz).date())

    def of_label(self, label: str) -> FiscalPeriod | None:
        """The period a `FY2026-P03` label names; None for anything else (a calendar month)."""
        found = LABEL.match(label)
        if found is None:
            return None
        return self.periods(int(found.group(1)))[int(found.group(2)) - 1]

    def of_month(self, label: str) -> FiscalPeriod | None:
        """For `months:M` calendars, the period that is the calendar month `YYYY-MM` (a week
        period is no calendar month: None)."""
        if self.spec.weeks is not None:
            return None
        year, month = (int(part) for part in label.split("-"))
        return self.period_of_date(date(year, month, 1))

    def instant(self, day: date) -> int:
        """Local midnight of `day` as epoch seconds."""
        return int(datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp())


@dataclass(slots=True)
class FiscalWindow:
    """A window kind over a fiscal calendar: `fp` (period), `fq` (quarter), `fy` (year) or
    `fytd` (year to date, an instance per period: see the module docstring)."""

    calendar: FiscalCalendar
    name: str
    _cached: tuple[float, float, int, int] = (math.inf, -math.inf, 0, 0)
    """(lo, hi, start, end): the instance of the last timestamp asked, in epoch seconds (opex
    events mostly arrive in order, so the next one usually falls in it too)."""

    def _span(self, timestamp: float) -> tuple[date, date]:
        period = self.calendar.period_of(timestamp)
        if self.name in ("fp", "fytd"):
            return period.start, period.end
        periods = self.calendar.periods(period.year)
        if self.name == "fq":
            first = (period.quarter - 1) * 3
            return periods[first].start, periods[first + 2].end
        return periods[0].start, periods[11].end

    def _instance(self, timestamp: float) -> tuple[int, int]:
        lo, hi, start, end = self._cached
        if lo <= timestamp < hi:
            return start, end
        first, last = self._span(timestamp)
        start, end = self.calendar.instant(first), self.calendar.instant(last)
        self._cached = (start, end, start, end)
        return start, end

    def start_of(self, timestamp: float) -> int:
        return self._instance(timestamp)[0]

    def end_of(self, start: int) -> int:
        return self._instance(start)[1]

    def since(self, start: int) -> int:
        """Where the instance starting at `start` begins summing: the fiscal year's start for
        `fytd`, else `start`."""
        if self.name != "fytd":
            return start
        return self.calendar.instant(self._year(start)[0].start)

    def year_end(self, start: int) -> int:
        """The end of the fiscal year holding the instance starting at `start`."""
        return self.calendar.instant(self._year(start)[11].end)

    def _year(self, start: int) -> tuple[FiscalPeriod, ...]:
        return self.calendar.periods(self.calendar.period_of(start).year)


def fiscal_windows(text: str, tz: ZoneInfo) -> dict[str, FiscalWindow]:
    """The `fp`, `fq`, `fytd` (and `fy`) windows of a `PULSE_FISCAL_CALENDAR` value ({} when
    empty). Raises `ConfigError` naming the setting for a value it cannot read."""
    if not text:
        return {}
    calendar = FiscalCalendar(FiscalSpec.parse(text), tz)
    return {name: FiscalWindow(calendar, name) for name in (*FISCAL_WINDOWS, "fy")}


def period_windows(
    month: CalendarMonth, fp: FiscalWindow | None, period: str
) -> list[tuple[str, int, int]]:
    """The period windows (window, start, end) a `budget_set.period` names: `YYYY-MM` its
    calendar month, `FY2026-P03` its fiscal period (`fp`: None when no calendar is set); with a
    `months:M` calendar a month and its fiscal period are the same span and a budget counts in
    both. Raises `InvalidEvent` for a fiscal period without a fiscal calendar, `ValueError` for
    a month a `datetime` cannot hold (`CalendarMonth.of_period`)."""
    found: list[tuple[str, int, int]] = []
    if period.startswith("FY"):
        if fp is None:
            raise InvalidEvent(
                "schema_violation",
                f"period {period} names a fiscal period and PULSE_FISCAL_CALENDAR is not set "
                "(name the calendar month, YYYY-MM)",
            )
        fiscal = fp.calendar.of_label(period)
    else:
        start = month.of_period(period)
        found.append(("1mo", start, month.end_of(start)))
        fiscal = None if fp is None else fp.calendar.of_month(period)
    if fiscal is not None:
        assert fp is not None
        start, end = fp.calendar.instant(fiscal.start), fp.calendar.instant(fiscal.end)
        if not found and fp.calendar.spec.weeks is None:  # a month calendar's FY label
            found.append(("1mo", start, end))
        found.append(("fp", start, end))
    return found
