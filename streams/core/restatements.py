"""Restatements: a period already final changes, and its records are published again.

Finance books corrections after a period closes: a budget revision in the next month names the
month (or fiscal period, `FY2026-P03`) it revises (`budget_set.period`). Within the restatement
horizon (`PULSE_RESTATEMENT_DAYS`, counted from the period's end plus the allowed lateness,
against the partition's watermark) such an event updates the period's window and the finalizer
publishes the changed records again with the next `revision` and the value first published final
(`as_reported`); beyond it the event is dead-lettered `late`, the period named (`check_period`).
A late expense (its 1-minute window final) restates the month and fiscal period holding its
`occurred_at` in the same way (`streams.core.late_flows`).
The period's window is kept as long as it can be restated, so the final rows never depend on
when windows were finalized.

`Revisions` is the finalizer's memory of what it published of each period window (`1mo`, and
with a fiscal calendar `fp`, `fq`, `fytd`: a fiscal period's budget restates its quarter and
every year to date that sums it): per KPI series, the revision, the as-reported value and the
last value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from streams.core.kpi_values import KpiValue, Labels
from streams.errors import InvalidEvent

DEFAULT_RESTATEMENT_DAYS = 92
"""About a quarter: last quarter's months can still be restated."""
DAY = 86400


def material(value: KpiValue, change: Decimal) -> bool:
    """Whether a restated value moved by more than `change` from its as-reported value (a
    value that appeared or vanished always has)."""
    if value.value is None or value.as_reported is None:
        return True
    return abs(value.value - value.as_reported) > change


def horizon_passed(end: float, lateness: float, horizon: float, watermark: float) -> bool:
    """Whether a period window ending at `end` can no longer be restated (nor kept)."""
    return end + lateness + horizon <= watermark


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_period(
    windows: list[tuple[str, int, int]],
    period: str,
    *,
    lateness: float,
    horizon: float,
    watermark: float,
) -> None:
    """Raises `InvalidEvent("late")` naming `period` when its windows (window, start, end; see
    `Windows.period_windows`) are final beyond the restatement horizon (`horizon` seconds after
    their end plus lateness)."""
    end = max(end for _, _, end in windows)
    if horizon_passed(end, lateness, horizon, watermark):
        raise InvalidEvent("late", beyond_horizon(period, end, horizon, watermark))


def beyond_horizon(period: str, end: float, horizon: float, judged: float) -> str:
    """The reason of a `late` event whose period (ended at `end`) can no longer be restated."""
    return (
        f"period {period} is closed beyond the restatement horizon of "
        f"{horizon / DAY:g} days (it ended {_utc(end)}; judged at {_utc(judged)}, the "
        "later of the watermark and the event's occurred_at)"
    )


@dataclass(slots=True)
class _Published:
    revision: int
    as_reported: Decimal | None
    last: KpiValue


Series = tuple[str, Labels]
Instance = tuple[str, int]
"""(window, start) of a period window instance."""


def _series(value: KpiValue) -> Series:
    return value.kpi, value.labels


def _same(a: KpiValue, b: KpiValue) -> bool:
    return (a.value, a.numerator, a.denominator) == (b.value, b.numerator, b.denominator)


class Revisions:
    """What a finalizer published of each period window instance ((window, start))."""

    def __init__(self) -> None:
        self._windows: dict[Instance, dict[Series, _Published]] = {}

    def __contains__(self, start: Instance) -> bool:
        return start in self._windows

    def first(self, start: Instance, values: list[KpiValue]) -> list[KpiValue]:
        """The first final publication of a window: revision 1 of each series."""
        self._windows[start] = {_series(v): _Published(1, v.value, v) for v in values}
        return values

    def restate(self, start: Instance, values: list[KpiValue]) -> list[KpiValue]:
        """The window's values now: those that changed since last published, each with its
        next revision and as-reported value (a series new to the window starts at 1)."""
        published = self._windows.setdefault(start, {})
        changed: list[KpiValue] = []
        for value in values:
            series = _series(value)
            before = published.get(series)
            if before is None:
                published[series] = _Published(1, value.value, value)
                changed.append(value)
            elif not _same(before.last, value):
                before.revision += 1
                before.last = replace(
                    value, revision=before.revision, as_reported=before.as_reported
                )
                changed.append(before.last)
        return changed

    def forget(self, keep: set[Instance]) -> None:
        """Forget every window not in `keep` (they can no longer be restated)."""
        self._windows = {s: w for s, w in self._windows.items() if s in keep}

    def starts(self) -> list[Instance]:
        return list(self._windows)
