"""PromQL for the Grafana boards, derived from the KPI catalog.

Every worker exports the KPI gauges of the partitions it owns, so a query must merge workers
(with a merge stage, the stage exports the company-wide values and the workers' own carry
`scope="worker"`: every query selects `scope!="worker"`, so it reads the stage's one value):
- flows and balances: `sum by (dims)` over workers;
- ratios, budget variance included: `scale * sum(numerator) / sum(denominator)` from the
  `_numerator`/`_denominator` families (never an average of the workers' ratios), the same as
  the recording rules; a worker exports the parts of a ratio even where its own denominator is
  zero (OpEx of a cost center whose budget another worker holds);
- formulas (cash conversion cycle): the same combination of their inputs' merged values;
- quantiles do not merge: one series per worker (`instance`).

Pure strings; nothing here talks to Prometheus or Grafana.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from streams.core.catalog import BU_REGION, FLOW_WINDOWS, RATIO_KINDS, Kpi
from streams.export import names
from streams.export.names import kpi_family

WINDOW_VARIABLE = "$window"
"""What a flow KPI's `window` label is set to: the board's `window` variable."""
FILTERED_DIMS = BU_REGION
"""Dimensions the boards filter by (their `business_unit` and `region` variables)."""
DETECTED_TOTAL_KINDS = frozenset({"flow", *RATIO_KINDS})
"""KPI kinds whose company total the detectors score (`streams.detection.watch.rollups` sums values
or numerators and denominators: balances and formulas carry neither, quantiles do not add up).
Checked on /metrics: `names.EXPECTED` has no dimensionless series for the others."""


def board_window(kpi: Kpi) -> str:
    """The `window` label value a board queries a KPI at: the `window` variable for flow-window
    KPIs, else the KPI's only window (`balance`, `30d`, `cumulative`, `1mo`)."""
    if kpi.windows == FLOW_WINDOWS:
        return WINDOW_VARIABLE
    if len(kpi.windows) == 1:
        return kpi.windows[0]
    raise ValueError(f"KPI {kpi.name}: no board layout for windows {kpi.windows}")


def selector(kpi: Kpi, window: str, extra: Sequence[str] = ()) -> str:
    """Label matchers `{...}` of a KPI family: the board's dimension filters and the window."""
    matchers = [f'{dim}=~"${dim}"' for dim in kpi.dims if dim in FILTERED_DIMS]
    return "{" + ", ".join([*matchers, f'window="{window}"', names.NOT_WORKER, *extra]) + "}"


def _agg(op: str, expr: str, by: Sequence[str]) -> str:
    return f"{op} by ({', '.join(by)}) ({expr})" if by else f"{op}({expr})"


def _scaled(scale: Decimal, expr: str) -> str:
    return expr if scale == 1 else f"{scale.normalize():f} * {expr}"


def value_expr(kpi: Kpi, kpis: Mapping[str, Kpi], by: Sequence[str] = ()) -> str:
    """The KPI's value, exact across workers, per `by` labels (none: one total).

    `kpis` resolves formula inputs. Quantile KPIs have no merged value: use `quantile_expr`.
    """
    window = board_window(kpi)
    sel = selector(kpi, window)
    family = kpi_family(kpi)
    if kpi.kind in RATIO_KINDS:
        numerator = _agg("sum", f"{family.numerator}{sel}", by)
        denominator = _agg("sum", f"{family.denominator}{sel}", by)
        return f"{_scaled(kpi.scale, numerator)} / {denominator}"  # in the catalog's unit
    if kpi.kind == "formula":
        return _combine(
            (coefficient, value_expr(kpis[name], kpis, by))
            for name, coefficient in kpi.numerator.items()
        )
    if kpi.kind == "quantile":
        raise ValueError(f"KPI {kpi.name}: quantiles do not merge across workers")
    return _agg("sum", f"{family.name}{sel}", by)


def _combine(terms: Iterable[tuple[int, str]]) -> str:
    """`a + b - c` of (coefficient, expression) terms; each term in parentheses."""
    parts = []
    for coefficient, expr in terms:
        factor = "" if abs(coefficient) == 1 else f"{abs(coefficient)} * "
        parts.append(f"{'-' if coefficient < 0 else '+'} {factor}({expr})")
    text = " ".join(parts)
    return text.removeprefix("+ ")


def quantile_expr(kpi: Kpi, quantile: Decimal) -> str:
    """One quantile of a quantile KPI, one series per worker (sketches are not exported, so
    the workers' quantiles cannot be merged)."""
    matchers = selector(kpi, board_window(kpi), [f'quantile="{quantile}"'])
    return f"{kpi_family(kpi).name}{matchers}"


def band_expr(family: names.Family, kpi: Kpi) -> str:
    """One of `names.BAND_FAMILIES` for the KPI's company total (every dimension label empty) at the
    board's window, for the worker the panel is repeated for (`$instance`)."""
    matchers = [
        f'kpi="{kpi.name}"',
        f'window="{board_window(kpi)}"',
        *(f'{dim}=""' for dim in kpi.dims),
        'instance=~"$instance"',
    ]
    factor = kpi_family(kpi).factor  # bands are exported in base units; boards show days
    query = f"{family.series}{{{', '.join(matchers)}}}"
    return query if factor == 1 else f"{query} / {factor}"


def anomaly_expr(kpis: Iterable[Kpi]) -> str:
    """Open anomaly alerts on any series of these KPIs (the domain board's annotations)."""
    kpis_re = "|".join(k.name for k in kpis)
    return f'{names.ANOMALY_ACTIVE.series}{{kpi=~"{kpis_re}"}} == 1'
