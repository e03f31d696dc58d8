"""KPI values of one window instance, computed from measure accumulators.

Pure functions over plain mappings, shared by `pulse backtest`, the `/metrics` collector and the
KPI topic. A KPI is computed at its own dimensions by summing (or merging) the finer cells of its
measures. Emission rules (docs/kpi-semantics.md): a value exists where at least one input has a
cell; formulas only where all inputs exist. A ratio whose denominator is zero here but whose
numerator is not has no value (`value` None) and is still emitted with its parts: another worker
may hold the denominator, and `sum(numerator) / sum(denominator)` across workers needs every
worker's numerator (a worker with COGS but no revenue in a window, or OpEx of a cost center
whose budget another worker holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from streams.core.catalog import Kpi, Linear
from streams.core.compiler import DERIVED_FROM_MINUTES, CompiledCatalog
from streams.core.measures import SELF, Acc, Dims, Key, Latest, LatestBy, MeasureStore, merge_acc
from streams.core.sketch import QuantileSketch

RATIO_QUANTUM = Decimal("1e-10")
ZERO = Decimal(0)
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class KpiValue:
    kpi: str
    window: str
    start: int
    end: int
    labels: Labels
    value: Decimal | None
    """None: a ratio with a zero denominator here, emitted for its parts only."""
    numerator: Decimal | None = None
    denominator: Decimal | None = None
    revision: int = 1
    """The how-manyth publication of a final value of this series and window (> 1: a period
    restated after it was final, `streams.core.restatements`)."""
    as_reported: Decimal | None = None
    """With `revision` > 1: the value first published final."""


def _projector(kpi_dims: tuple[str, ...], measure_dims: tuple[str, ...]) -> list[int]:
    return [measure_dims.index(d) for d in kpi_dims]


def _project(
    catalog: CompiledCatalog, kpi: Kpi, accs: Mapping[Key, Acc], names: Iterable[str]
) -> dict[Dims, dict[str, Acc]]:
    """{kpi dims: {measure: accumulator summed/merged over the finer cells}}."""
    wanted = set(names)
    index = {n: _projector(kpi.dims, catalog.measures[n].dims) for n in wanted}
    out: dict[Dims, dict[str, Acc]] = {}
    for (name, dims), acc in accs.items():
        if name in wanted:
            projected = tuple(dims[i] for i in index[name])
            cell = out.setdefault(projected, {})
            cell[name] = merge_acc(cell.get(name), acc)
    return out


def _linear(cell: Mapping[str, Acc], linear: Linear) -> Decimal:
    total = ZERO
    for name, coefficient in linear.items():
        acc = cell.get(name)
        if isinstance(acc, Decimal | int):
            total += coefficient * Decimal(acc)
        elif isinstance(acc, Latest | LatestBy):
            total += coefficient * acc.value
    return total


def ratio(numerator: Decimal, denominator: Decimal, scale: Decimal = Decimal(1)) -> Decimal:
    return (numerator * scale / denominator).quantize(RATIO_QUANTUM, rounding=ROUND_HALF_EVEN)


def _ratio_value(
    kpi: Kpi,
    window: str,
    span: tuple[int, int],
    labels: Labels,
    parts: tuple[Decimal, Decimal],
) -> KpiValue | None:
    """A ratio KPI's value with its parts; parts only when the denominator is zero here;
    nothing when both are."""
    numerator, denominator = parts
    if denominator == 0 and numerator == 0:
        return None
    value = ratio(numerator, denominator, kpi.scale) if denominator != 0 else None
    return KpiValue(kpi.name, window, *span, labels, value, numerator, denominator)


def _labels(kpi: Kpi, dims: Dims) -> Labels:
    return tuple(zip(kpi.dims, dims, strict=True))


def flow_values(
    catalog: CompiledCatalog, window: str, start: int, end: int, accs: Mapping[Key, Acc]
) -> list[KpiValue]:
    """Flow, ratio and quantile KPIs of one `1m`/`5m`/`1h`/`1d` window instance."""
    values: list[KpiValue] = []
    for kpi in catalog.kpis.values():
        if window not in kpi.windows or kpi.kind not in {"flow", "ratio", "quantile"}:
            continue
        inputs = [*kpi.numerator, *(kpi.denominator or {})]
        for dims, cell in sorted(_project(catalog, kpi, accs, inputs).items()):
            labels = _labels(kpi, dims)
            if kpi.kind == "quantile":
                sketch = cell[next(iter(kpi.numerator))]
                assert isinstance(sketch, QuantileSketch)
                for q in kpi.quantiles:
                    got = sketch.quantile(q)
                    if got is not None:
                        qlabels = (*labels, ("quantile", str(q)))
                        values.append(
                            KpiValue(kpi.name, window, start, end, qlabels, Decimal(repr(got)))
                        )
                continue
            numerator = _linear(cell, kpi.numerator)
            if kpi.kind == "flow":
                values.append(KpiValue(kpi.name, window, start, end, labels, numerator))
                continue
            denominator = _linear(cell, kpi.denominator or {})
            found = _ratio_value(kpi, window, (start, end), labels, (numerator, denominator))
            if found is not None:
                values.append(found)
    return values


def day_values(
    catalog: CompiledCatalog,
    start: int,
    end: int,
    cumulative: Mapping[Key, Acc],
    trailing: Mapping[Key, Acc],
    *,
    trailing_start: int | None = None,
) -> list[KpiValue]:
    """Balances, cumulative and trailing KPIs and their formulas as of the end of one day.

    `cumulative`: every `1d` measure summed over all days up to this one; `trailing`: the same
    over the trailing days (the catalog uses 30) ending with this one, which start at
    `trailing_start` (the `window_start` of `30d` values; balances carry the day's own start).
    """
    since = start if trailing_start is None else trailing_start
    values: list[KpiValue] = []
    by_kpi: dict[str, dict[Dims, Decimal]] = {}
    for kpi in catalog.kpis.values():
        if kpi.kind == "balance":
            window = kpi.windows[0]
            for dims, cell in sorted(_project(catalog, kpi, cumulative, kpi.numerator).items()):
                value = _linear(cell, kpi.numerator)
                values.append(KpiValue(kpi.name, window, start, end, _labels(kpi, dims), value))
        elif kpi.kind in {"cumulative_ratio", "trailing_ratio"}:
            assert kpi.denominator is not None
            window = kpi.windows[0]
            num = _project(catalog, kpi, cumulative, kpi.numerator)
            den_source = trailing if kpi.kind == "trailing_ratio" else cumulative
            den = _project(catalog, kpi, den_source, kpi.denominator)
            span = (since if kpi.kind == "trailing_ratio" else start, end)
            for dims in sorted(den.keys() | num.keys()):
                denominator = _linear(den.get(dims, {}), kpi.denominator)
                numerator = _linear(num.get(dims, {}), kpi.numerator)
                found = _ratio_value(
                    kpi, window, span, _labels(kpi, dims), (numerator, denominator)
                )
                if found is None:
                    continue
                values.append(found)
                if found.value is not None:
                    by_kpi.setdefault(kpi.name, {})[dims] = found.value
    for name in catalog.formula_order:
        kpi = catalog.kpis[name]
        inputs = [by_kpi.get(ref, {}) for ref in kpi.numerator]
        for dims in sorted(set.intersection(*(set(i) for i in inputs))):
            value = sum((c * by_kpi[ref][dims] for ref, c in kpi.numerator.items()), ZERO)
            by_kpi.setdefault(name, {})[dims] = value
            values.append(KpiValue(name, kpi.windows[0], since, end, _labels(kpi, dims), value))
    return values


def period_values(
    catalog: CompiledCatalog, window: str, start: int, end: int, accs: Mapping[Key, Acc]
) -> list[KpiValue]:
    """Period-variance KPIs (budget variance) of one period window instance: a calendar month
    (`1mo`), or a fiscal period, quarter or year to date (`fp`, `fq`, `fytd`; the last two
    from `span_accs`, where the budgets of several periods add up)."""
    values: list[KpiValue] = []
    for kpi in catalog.kpis.values():
        if kpi.kind != "period_variance" or window not in kpi.windows:
            continue
        assert kpi.denominator is not None
        actual = _project(catalog, kpi, accs, kpi.numerator)
        budget = _project(catalog, kpi, accs, kpi.denominator)
        for dims in sorted(budget.keys() | actual.keys()):
            planned = _linear(budget.get(dims, {}), kpi.denominator)
            spent = _linear(actual.get(dims, {}), kpi.numerator)
            labels = _labels(kpi, dims)
            found = _ratio_value(kpi, window, (start, end), labels, (spent - planned, planned))
            if found is not None:
                values.append(found)
    return values


def window_accs(
    stores: Iterable[MeasureStore], window: str, start: int, end: int
) -> dict[Key, Acc]:
    """Accumulators of one window instance across stores; `5m` and `1h` are summed from the
    `1m` buckets they cover (see `compiler.DERIVED_FROM_MINUTES`)."""
    if window not in DERIVED_FROM_MINUTES:
        return merged_bucket(stores, (window, start))
    stores = list(stores)
    merged: dict[Key, Acc] = {}
    for minute in range(start, end, 60):
        for store in stores:
            for key, acc in store.buckets.get(("1m", minute), {}).items():
                merged[key] = merge_acc(merged.get(key), acc)
    return merged


def span_accs(stores: Iterable[MeasureStore], since: int, end: int) -> dict[Key, Acc]:
    """Accumulators of the fiscal periods (`fp` buckets) starting in [since, end), across
    stores: a fiscal quarter (`fq`) or a year to date (`fytd`). Sums add up; a budget register
    becomes one register per period (a `LatestBy` whose origins are prefixed with the period's
    start), so the budgets of different periods add up while the registers of one period from
    two stores still resolve to the newer, as in the period's own window."""
    merged: dict[Key, Acc] = {}
    for store in stores:
        for (window, start), accs in store.buckets.items():
            if window != "fp" or not since <= start < end:
                continue
            for key, acc in accs.items():
                if isinstance(acc, Latest):
                    acc = LatestBy(((f"{start}|{SELF}", acc),))  # noqa: PLW2901
                elif isinstance(acc, LatestBy):
                    acc = LatestBy(tuple((f"{start}|{o}", r) for o, r in acc.registers))  # noqa: PLW2901
                merged[key] = merge_acc(merged.get(key), acc)
    return merged


def merged_bucket(stores: Iterable[MeasureStore], bucket: tuple[str, int]) -> dict[Key, Acc]:
    merged: dict[Key, Acc] = {}
    for store in stores:
        for key, acc in store.buckets.get(bucket, {}).items():
            merged[key] = merge_acc(merged.get(key), acc)
    return merged


def day_sums(
    stores: Iterable[MeasureStore], until: float, since: float | None = None
) -> dict[Key, Acc]:
    """Sums of the `1d` buckets with since <= start <= until (no `since`: all, plus `base`)."""
    sums: dict[Key, Acc] = {}
    for store in stores:
        if since is None:
            for key, value in store.base.items():
                sums[key] = merge_acc(sums.get(key), value)
        for (window, start), accs in store.buckets.items():
            if window == "1d" and start <= until and (since is None or start >= since):
                for key, acc in accs.items():
                    if isinstance(acc, Decimal | int):
                        sums[key] = merge_acc(sums.get(key), acc)
    return sums
