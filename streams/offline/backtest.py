"""`pulse backtest FILE`: the same core, offline, over a JSON-lines file of events.

Writes the KPI values of all closed windows as CSV (header
`kpi,window,window_start,window_end,dimensions,value`); the end of the input closes every window.
Invalid lines are reported on stderr with their line number and the run goes on.
"""

from __future__ import annotations

import csv
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TextIO
from zoneinfo import ZoneInfo

from streams.core import Watermark, decode_event
from streams.core.cardinality import CardinalityGuard
from streams.core.compiler import PERIOD_WINDOWS, compile_catalog
from streams.core.finalize import Finalizer
from streams.core.kpi_values import KpiValue, Labels
from streams.core.money import FxTable
from streams.core.partition_state import PartitionState, Windows
from streams.core.restatements import horizon_passed
from streams.errors import InvalidEvent, RejectReason
from streams.settings import Settings

HEADER = ("kpi", "window", "window_start", "window_end", "dimensions", "value")
FLUSH_EVERY = 10_000


@dataclass
class BacktestSummary:
    lines: int = 0
    counted: int = 0
    rejected: Counter[RejectReason] = field(default_factory=Counter)
    rows: int = 0


def rfc3339(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_row(value: KpiValue) -> tuple[str, ...]:
    dims = ";".join(f"{k}={v}" for k, v in sorted(value.labels))
    assert value.value is not None
    number = value.value if value.value != 0 else Decimal(0)
    return (
        value.kpi,
        value.window,
        rfc3339(value.start),
        rfc3339(value.end),
        dims,
        format(number, "f"),
    )


def run_backtest(
    lines: Iterable[bytes],
    settings: Settings,
    out: TextIO,
    err: TextIO,
    *,
    flush_every: int = FLUSH_EVERY,
) -> BacktestSummary:
    """`flush_every`: lines between two finalizations (the rows do not depend on it)."""
    catalog = compile_catalog(fiscal=bool(settings.fiscal_calendar))
    windows = Windows.for_timezone(
        ZoneInfo(settings.business_timezone),
        settings.restatement_days,
        settings.fiscal_calendar,
    )
    state = PartitionState(
        catalog,
        windows,
        watermark=Watermark(
            settings.watermark_delay_seconds,
            settings.allowed_lateness_seconds,
            settings.source_idle_seconds,
        ),
        fx=FxTable(settings.reporting_currency, settings.fx_rates),
        dedupe_max_entries=settings.dedupe_max_entries,
        retained_windows=settings.retained_windows,
        guard=CardinalityGuard.for_catalog(
            catalog,
            settings.max_dimension_values,
            max_combinations=settings.max_series_per_kpi,
            max_series=settings.kpi_series_budget,
        ),
        join_max_entries=settings.join_max_entries,
    )
    finalizer = Finalizer(catalog, windows, settings.allowed_lateness_seconds)
    limits = settings.validation_limits
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    summary = BacktestSummary()
    now = time.time()

    # Period windows can be restated until their horizon passes: their rows wait until then
    # (or the end of the input), so a row is the period's last revision whatever the cadence.
    restatable: dict[tuple[str, str, int, Labels], KpiValue] = {}

    def flush(watermark: float) -> None:
        values: list[KpiValue] = []
        for value in finalizer.close(state, watermark):
            if value.window in PERIOD_WINDOWS:
                restatable[(value.kpi, value.window, value.start, value.labels)] = value
            else:
                values.append(value)
        for key, value in list(restatable.items()):
            if horizon_passed(
                value.end, settings.allowed_lateness_seconds, windows.restatement, watermark
            ):
                values.append(restatable.pop(key))
        # One process sees every event: a ratio without a denominator has no value to write.
        values = [v for v in values if v.value is not None]
        values.sort(key=lambda v: (v.end, v.kpi, v.window, v.labels))
        writer.writerows(csv_row(v) for v in values)
        summary.rows += len(values)

    for number, line in enumerate(lines, start=1):
        summary.lines = number
        try:
            state.apply(decode_event(line.rstrip(b"\r\n"), limits, now))
        except InvalidEvent as error:
            summary.rejected[error.reason] += 1
            err.write(f"line {number}: {error.reason}: {error.detail}\n")
        else:
            summary.counted += 1
        if number % flush_every == 0:
            flush(state.watermark.value)
    flush(math.inf)
    rejected = sum(summary.rejected.values())
    reasons = ", ".join(f"{n} {r}" for r, n in sorted(summary.rejected.items()))
    err.write(
        f"backtest: {summary.lines} lines, {summary.counted} counted, {rejected} rejected"
        + (f" ({reasons})" if reasons else "")
        + f", {summary.rows} KPI values\n"
    )
    return summary
