"""The page's JSON: one snapshot of what this worker owns, built when the page asks.

- **tiles**: each KPI company-wide (within this worker's partitions) for the latest closed
  window instance of each of its windows, the same instances /metrics shows: a flow is the sum
  of its series, a ratio its summed numerator over its summed denominator
  (`streams.detection.watch.rollups`, the roll-up the detectors watch), a balance the sum of its
  series. Quantiles and formulas over trailing ratios do not add up and have no company-wide
  tile.
- **points**: the recent scored points of each tile's series with their band (`History`).
- **alerts**: every open anomaly alert with its severity, band, score and an explanation of its
  newest point; **stale** sources; **lag** per owned partition; **throughput**.

Money is in the reporting currency; times are epoch seconds (UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from streams.core import NO_WATERMARK, KpiValue
from streams.core.compiler import CompiledCatalog
from streams.detection.watch import AnomalyWatch, Series, SeriesKey, rollups
from streams.export.page.history import History, PageState

LagSource = Callable[[], Iterable[tuple[str, int, int]]]

ZERO = Decimal(0)
WINDOW_ORDER = ("1m", "5m", "1h", "1d", "30d", "1mo", "fp", "fq", "fytd", "balance", "cumulative")


def totals(catalog: CompiledCatalog, values: Iterable[KpiValue]) -> list[KpiValue]:
    """The company-wide value of each (KPI, window) among `values` (latest instances)."""
    by_window: dict[str, list[KpiValue]] = {}
    for v in values:
        by_window.setdefault(v.window, []).append(v)
    out: list[KpiValue] = []
    for group in by_window.values():
        out += [v for v in group if not catalog.kpis[v.kpi].dims and v.value is not None]
        out += [v for v in rollups(catalog, group) if not v.labels and v.value is not None]
        out += _balances(catalog, group)
    return sorted(out, key=lambda v: (v.kpi, _window_rank(v.window)))


def _balances(catalog: CompiledCatalog, values: list[KpiValue]) -> list[KpiValue]:
    """Balances add up across series (what is owed, held or owing now): their sum."""
    sums: dict[str, list[KpiValue]] = {}
    for v in values:
        kpi = catalog.kpis[v.kpi]
        if kpi.kind == "balance" and kpi.dims and v.value is not None:
            sums.setdefault(v.kpi, []).append(v)
    return [
        KpiValue(
            name, vs[0].window, vs[0].start, vs[0].end, (), sum((v.value or ZERO for v in vs), ZERO)
        )
        for name, vs in sums.items()
    ]


def _window_rank(window: str) -> int:
    return WINDOW_ORDER.index(window) if window in WINDOW_ORDER else len(WINDOW_ORDER)


def _time(value: float) -> float | None:
    return None if value == NO_WATERMARK else value


def snapshot(
    state: PageState,
    watch: AnomalyWatch | None,
    history: History,
    lag: LagSource | None,
    now: float,
) -> dict[str, Any]:
    """The page's JSON document as of wall-clock `now` (epoch seconds)."""
    catalog = state.config.catalog
    active = dict(watch.active()) if watch is not None else {}
    tiles = []
    for v in totals(catalog, state.latest_values()):
        kpi = catalog.kpis[v.kpi]
        key: SeriesKey = (v.kpi, v.window, ())
        alert = active.get(key)
        tiles.append(
            {
                "kpi": v.kpi,
                "window": v.window,
                "unit": kpi.unit,
                "description": kpi.description,
                "start": v.start,
                "end": v.end,
                "value": float(v.value or 0),
                "alert": alert.lifecycle.severity if alert is not None else None,
                "points": [
                    {
                        "start": p.start,
                        "observed": p.observed,
                        "expected": p.expected,
                        "lower": p.lower,
                        "upper": p.upper,
                        "score": round(p.score, 4),
                    }
                    for p in history.series.get((v.kpi, v.window), ())
                ],
            }
        )
    owned = list(lag()) if lag is not None else []
    stale = watch.completeness.stale() if watch is not None else {}
    rate = history.throughput()
    return {
        "generated_at": now,
        "currency": state.config.fx.reporting_currency,
        "partitions": len(state.partitions),
        "watermark": _time(state.watermark()),
        "last_event": _time(state.last_event_time()),
        "counted": sum(state.processed.values()),
        "rejected": sum(state.rejected.values()),
        "throughput": round(rate, 2) if rate is not None else None,
        "lag": {
            "total": sum(n for *_, n in owned),
            "partitions": [{"topic": t, "partition": p, "lag": n} for t, p, n in owned],
        },
        "detection": watch is not None,
        "tiles": tiles,
        "alerts": [_alert(watch, k, s) for k, s in sorted(active.items(), key=_urgency)]
        if watch
        else [],
        "stale": [{"source": src, "since": since} for src, since in sorted(stale.items())],
    }


def _urgency(item: tuple[SeriesKey, Series]) -> tuple[int, int, SeriesKey]:
    """Critical first, then the widest series (company-wide before one region of one unit)."""
    key, series = item
    return (0 if series.lifecycle.severity == "critical" else 1, len(key[2]), key)


def _alert(watch: AnomalyWatch, key: SeriesKey, series: Series) -> dict[str, Any]:
    kpi, window, labels = key
    score = series.score
    return {
        "kpi": kpi,
        "window": window,
        "dimensions": dict(labels),
        "severity": series.lifecycle.severity,
        "started_at": series.lifecycle.started_at,
        "window_start": series.last_start,
        "observed": series.observed,
        "expected": score.expected if score else None,
        "lower": score.lower if score else None,
        "upper": score.upper if score else None,
        "score": round(score.score, 4) if score else None,
        "explanation": _explanation(watch, key, series),
    }


def _explanation(watch: AnomalyWatch, key: SeriesKey, series: Series) -> str | None:
    """The watch's own explainer, on the series' newest scored instance: why it is anomalous
    now (the `opened` record on `<prefix>.anomalies` holds the text of its first point)."""
    if series.score is None:
        return None
    kpi, window, labels = key
    return watch.explain_series(kpi, window, labels, int(series.last_start)).text
