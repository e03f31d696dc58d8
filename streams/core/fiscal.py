"""Fiscal calendars (`PULSE_FISCAL_CALENDAR`): fiscal periods, quarters and years as windows.

Not wired into the catalog yet (issue 15, part 3): the window kinds and the parser of the setting
are here and checked against an independent computation; no KPI is kept in them and the setting
is not read, so it is not in `streams.settings` either.

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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from streams.errors import ConfigError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PATTERNS = {"4-4-5": (4, 4, 5), "4-5-4": (4, 5, 4), "5-4-4": (5, 4, 4)}
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

    def instant(self, day: date) -> int:
        """Local midnight of `day` as epoch seconds."""
        return int(datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp())


@dataclass(slots=True)
class FiscalWindow:
    """A window kind over a fiscal calendar: `fp` (period), `fq` (quarter) or `fy` (year)."""

    calendar: FiscalCalendar
    name: str

    def _span(self, timestamp: float) -> tuple[date, date]:
        period = self.calendar.period_of(timestamp)
        if self.name == "fp":
            return period.start, period.end
        periods = self.calendar.periods(period.year)
        if self.name == "fq":
            first = (period.quarter - 1) * 3
            return periods[first].start, periods[first + 2].end
        return periods[0].start, periods[11].end

    def start_of(self, timestamp: float) -> int:
        return self.calendar.instant(self._span(timestamp)[0])

    def end_of(self, start: int) -> int:
        return self.calendar.instant(self._span(start)[1])


def fiscal_windows(text: str, tz: ZoneInfo) -> dict[str, FiscalWindow]:
    """The `fp`, `fq` and `fy` windows of a `PULSE_FISCAL_CALENDAR` value ({} when empty)."""
    if not text:
        return {}
    calendar = FiscalCalendar(FiscalSpec.parse(text), tz)
    return {name: FiscalWindow(calendar, name) for name in ("fp", "fq", "fy")}
