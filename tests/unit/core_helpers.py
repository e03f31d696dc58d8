"""Readers of core state for the unit tests, in the terms of the 1-minute revenue they check."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from streams.core import PartitionState, WorkerState

Series = tuple[str, str]


def revenue_1m(part: PartitionState) -> dict[int, dict[Series, Decimal]]:
    """{window start: {(business_unit, region): revenue}} of the 1-minute windows held."""
    out: dict[int, dict[Series, Decimal]] = {}
    for (window, start), accs in part.store.buckets.items():
        if window != "1m":
            continue
        for (measure, dims), acc in accs.items():
            if measure == "revenue":
                out.setdefault(start, {})[(dims[0], dims[1])] = acc  # type: ignore[assignment]
    return out


def revenue_at(part: PartitionState, start: int, series: Series) -> Decimal:
    return revenue_1m(part).get(start, {}).get(series, Decimal(0))


@dataclass(frozen=True)
class ClosedWindow:
    start: int
    end: int
    revenue: dict[Series, Decimal]


def closed_revenue(state: WorkerState) -> ClosedWindow | None:
    """The 1-minute revenue the worker exports: newest window closed on every partition."""
    values = [v for v in state.latest_values() if v.window == "1m" and v.kpi == "revenue"]
    if not state.partitions or not any(p.has_data for p in state.partitions.values()):
        return None
    mark = state.watermark()
    start = int(mark // 60) * 60 - 60
    return ClosedWindow(
        start,
        start + 60,
        {(dict(v.labels)["business_unit"], dict(v.labels)["region"]): v.value for v in values},
    )


def revenue_cells(record: dict[str, object]) -> list[list[object]]:
    """The 1-minute revenue cells of a changelog record as [start, unit, region, value]."""
    store = record["store"]
    assert isinstance(store, dict)
    return sorted(
        [start, dims[0], dims[1], encoded["d"]]
        for window, start, measure, dims, encoded in store["cells"]
        if window == "1m" and measure == "revenue"
    )
