"""Checks the KPI catalog against the event contract and compiles it for the hot path.

`compile_catalog` raises `CatalogError` (a `ConfigError`) naming the KPI or measure at fault:
unknown event type or field, a dimension an event does not carry, a reference to an unknown
measure or KPI, a cycle among formulas, a bad unit or window. The result maps each event type to
the few `Contribution`s it makes, so that applying an event is a dict lookup and a short loop.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from schemas import EVENT_MODELS, Dimensions, Envelope
from streams.core.catalog import CATALOG, FLOW_WINDOWS, UNITS, Catalog, Kpi, Measure, Where
from streams.core.fiscal import FISCAL_WINDOWS
from streams.errors import ConfigError

DIMENSION_FIELDS = frozenset(Dimensions.model_fields)
WINDOWS_BY_KIND: dict[str, frozenset[str]] = {
    "flow": frozenset(FLOW_WINDOWS),
    "ratio": frozenset(FLOW_WINDOWS),
    "quantile": frozenset(FLOW_WINDOWS),
    "balance": frozenset({"balance"}),
    "cumulative_ratio": frozenset({"cumulative"}),
    "trailing_ratio": frozenset({"30d"}),
    "formula": frozenset({"30d"}),
    "period_variance": frozenset({"1mo", *FISCAL_WINDOWS}),
}


class CatalogError(ConfigError):
    """The KPI catalog contradicts itself or the event contract."""


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one event type adds to one measure."""

    measure: Measure
    name: str
    additive: bool
    """A sum or a count: the hot path adds a number to each of `windows`."""
    sign: int
    dims: Callable[[Any], tuple[str, ...]]
    value: Callable[[Any], Any] | None
    keep: Callable[[Any], bool] | None
    windows: tuple[str, ...]
    money: bool
    batched: bool = False
    """Additive into minutes and business days only: `PartitionState.flush` adds it per group."""
    daily: bool = False
    """Kept per business day (`1d` among `windows`)."""


@dataclass(frozen=True, slots=True)
class CompiledCatalog:
    catalog: Catalog
    measures: dict[str, Measure]
    kpis: dict[str, Kpi]
    storage_windows: dict[str, tuple[str, ...]]
    by_event: dict[str, tuple[Contribution, ...]]
    join_starts: dict[str, tuple[Measure, ...]]
    """Event type → quantile measures that this event type starts (e.g. order_placed)."""
    money_types: frozenset[str]
    """Event types whose amount some measure converts to the reporting currency."""
    formula_order: tuple[str, ...]


def compile_catalog(catalog: Catalog = CATALOG, *, fiscal: bool = False) -> CompiledCatalog:
    """`fiscal`: a fiscal calendar is set (`PULSE_FISCAL_CALENDAR`), so period-variance KPIs
    are kept in its windows too (`FISCAL_WINDOWS`, after their own)."""
    if fiscal:
        catalog = Catalog(
            catalog.measures,
            tuple(
                replace(k, windows=(*k.windows, *FISCAL_WINDOWS))
                if k.kind == "period_variance" and not set(FISCAL_WINDOWS) & set(k.windows)
                else k
                for k in catalog.kpis
            ),
        )
    measures = _unique({m.name: m for m in catalog.measures}, catalog.measures, "measure")
    kpis = _unique({k.name: k for k in catalog.kpis}, catalog.kpis, "KPI")
    for measure in catalog.measures:
        _check_measure(measure)
    storage: dict[str, set[str]] = {name: set() for name in measures}
    for kpi in catalog.kpis:
        for name, windows in _check_kpi(kpi, measures, kpis).items():
            storage[name] |= windows
    storage_windows = {name: tuple(sorted(w)) for name, w in storage.items()}
    by_event: dict[str, list[Contribution]] = {}
    join_starts: dict[str, list[Measure]] = {}
    for measure in catalog.measures:
        kept_in = storage_windows[measure.name]
        if not kept_in:
            continue  # declared but used by no KPI: nothing to keep
        for event_type, sign in measure.events.items():
            by_event.setdefault(event_type, []).append(
                _contribution(measure, event_type, sign, kept_in)
            )
        if measure.join is not None:
            join_starts.setdefault(measure.join.start, []).append(measure)
    return CompiledCatalog(
        catalog=catalog,
        measures=measures,
        kpis=kpis,
        storage_windows=storage_windows,
        by_event={t: tuple(c) for t, c in by_event.items()},
        join_starts={t: tuple(m) for t, m in join_starts.items()},
        money_types=frozenset(t for t, cs in by_event.items() if any(c.money for c in cs)),
        formula_order=_formula_order(catalog.kpis, kpis),
    )


def _unique(by_name: dict[str, Any], items: tuple[Any, ...], what: str) -> dict[str, Any]:
    if len(by_name) != len(items):
        names = [item.name for item in items]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise CatalogError(f"catalog: {what} {duplicated[0]!r} is declared twice")
    return by_name


def _fields(event_type: str) -> set[str]:
    return set(EVENT_MODELS[event_type].model_fields)


def _check_measure(measure: Measure) -> None:
    def fail(problem: str) -> CatalogError:
        return CatalogError(f"catalog: measure {measure.name!r}: {problem}")

    if not measure.events:
        raise fail("has no source events")
    for event_type, sign in measure.events.items():
        _check_source(measure, event_type, sign, fail)
    if (measure.kind == "quantile") != (measure.join is not None):
        raise fail("quantile measures, and only they, need a join")
    if measure.join is not None:
        if measure.join.start not in EVENT_MODELS:
            raise fail(f"unknown join start event {measure.join.start!r}")
        if measure.join.key not in _fields(measure.join.start):
            raise fail(f"{measure.join.start} has no join key {measure.join.key!r}")
    if (measure.kind == "latest") != (measure.period_field is not None):
        raise fail("latest measures, and only they, are kept per period field")


def _check_source(
    measure: Measure, event_type: str, sign: int, fail: Callable[[str], CatalogError]
) -> None:
    if event_type not in EVENT_MODELS:
        raise fail(f"unknown event type {event_type!r}")
    if sign not in (1, -1):
        raise fail(f"sign of {event_type} must be 1 or -1, not {sign}")
    fields = _fields(event_type)
    if measure.kind == "sum" and (measure.field is None or measure.field not in fields):
        raise fail(f"{event_type} has no field {measure.field!r} to sum")
    for dim in measure.dims:
        if dim not in DIMENSION_FIELDS and dim not in fields:
            raise fail(f"{event_type} carries no dimension or field {dim!r}")
        if dim in DIMENSION_FIELDS and "dimensions" not in fields:
            raise fail(f"{event_type} has no dimensions")
    if measure.where is not None:
        _check_where(measure.where, fields, fail)
    if measure.period_field is not None and measure.period_field not in fields:
        raise fail(f"{event_type} has no period field {measure.period_field!r}")


def _check_where(where: Where, fields: set[str], fail: Callable[[str], CatalogError]) -> None:
    if where.field not in fields:
        raise fail(f"filter on unknown field {where.field!r}")
    if where.op == "le_field" and (not isinstance(where.value, str) or where.value not in fields):
        raise fail(f"filter compares with unknown field {where.value!r}")


def _check_kpi(kpi: Kpi, measures: dict[str, Measure], kpis: dict[str, Kpi]) -> dict[str, set[str]]:
    """Validate one KPI; return the windows each of its measures must be kept in."""

    def fail(problem: str) -> CatalogError:
        return CatalogError(f"catalog: KPI {kpi.name!r}: {problem}")

    if kpi.unit not in UNITS:
        raise fail(f"unknown unit {kpi.unit!r} (one of {', '.join(sorted(UNITS))})")
    allowed = WINDOWS_BY_KIND.get(kpi.kind)
    if allowed is None:
        raise fail(f"unknown kind {kpi.kind!r}")
    if not kpi.windows or not set(kpi.windows) <= allowed:
        raise fail(f"windows {list(kpi.windows)} not allowed for a {kpi.kind} KPI")
    if not kpi.numerator:
        raise fail("has no inputs")
    if kpi.kind == "formula":
        _check_formula(kpi, kpis, fail)
        return {}
    needs_denominator = kpi.kind in {
        "ratio",
        "cumulative_ratio",
        "trailing_ratio",
        "period_variance",
    }
    if needs_denominator != (kpi.denominator is not None):
        raise fail("ratios, and only they, have a denominator")
    if kpi.kind == "quantile" and not kpi.quantiles:
        raise fail("lists no quantiles")
    storage: dict[str, set[str]] = {}
    for role, linear in (("numerator", kpi.numerator), ("denominator", kpi.denominator or {})):
        for name in linear:
            measure = measures.get(name)
            if measure is None:
                raise fail(f"{role} refers to unknown measure {name!r}")
            if not set(kpi.dims) <= set(measure.dims):
                raise fail(f"dimensions {list(kpi.dims)} are not all kept by measure {name!r}")
            if (measure.kind == "quantile") != (kpi.kind == "quantile"):
                raise fail(f"measure {name!r} of kind {measure.kind} does not fit a {kpi.kind}")
            storage[name] = _storage_windows(kpi)
    return storage


def _check_formula(kpi: Kpi, kpis: dict[str, Kpi], fail: Callable[[str], CatalogError]) -> None:
    for name in kpi.numerator:
        if name not in kpis or name == kpi.name:
            raise fail(f"formula refers to unknown KPI {name!r}")
        if set(kpis[name].windows) != set(kpi.windows):
            raise fail(f"formula input {name!r} has other windows")


BATCHED_WINDOWS = frozenset({"1m", "1d"})
"""Windows whose sums `PartitionState.flush` adds per group (a minute and its business day)."""
DERIVED_FROM_MINUTES = frozenset({"5m", "1h"})
"""Windows summed from `1m` buckets when evaluated, so an event updates 2 buckets, not 4."""
DERIVED_FROM_PERIODS = frozenset({"fq", "fytd"})
"""Fiscal windows summed from the `fp` buckets they cover (`kpi_values.span_accs`)."""
PERIOD_WINDOWS = frozenset({"1mo", *FISCAL_WINDOWS})
"""Windows of period-variance KPIs: an event naming a period (a budget), or a late flow they
sum (an expense: `streams.core.late_flows`), can restate them after they are final
(`streams.core.restatements`)."""


def _storage_windows(kpi: Kpi) -> set[str]:
    if kpi.kind in {"flow", "ratio", "quantile"}:
        windows = set(kpi.windows) - DERIVED_FROM_MINUTES
        return windows | ({"1m"} if set(kpi.windows) & DERIVED_FROM_MINUTES else set())
    if kpi.kind == "period_variance":
        return (set(kpi.windows) - DERIVED_FROM_PERIODS) | (
            {"fp"} if set(kpi.windows) & DERIVED_FROM_PERIODS else set()
        )
    return {"1d"}  # balances, cumulative and trailing KPIs are built from business days


def _formula_order(items: tuple[Kpi, ...], kpis: dict[str, Kpi]) -> tuple[str, ...]:
    """Formula KPIs in an order where inputs come first; raises on a cycle."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order or kpis[name].kind != "formula":
            return
        if name in visiting:
            raise CatalogError(f"catalog: KPI {name!r}: formula cycle {' -> '.join(path)}")
        visiting.add(name)
        for ref in kpis[name].numerator:
            visit(ref, (*path, ref))
        order.append(name)

    for kpi in items:
        visit(kpi.name, (kpi.name,))
    return tuple(order)


def _contribution(
    measure: Measure, event_type: str, sign: int, windows: tuple[str, ...]
) -> Contribution:
    model = EVENT_MODELS[event_type]
    paths = [f"dimensions.{d}" if d in DIMENSION_FIELDS else d for d in measure.dims]
    getter: Callable[[Any], Any] = operator.attrgetter(*paths)
    dims: Callable[[Any], tuple[str, ...]] = (
        getter if len(paths) > 1 else (lambda event: (getter(event),))
    )
    value = operator.attrgetter(measure.field) if measure.kind == "sum" and measure.field else None
    money = measure.field == "amount" and "currency" in model.model_fields
    return Contribution(
        measure=measure,
        name=measure.name,
        additive=measure.kind in {"sum", "count"},
        sign=sign,
        dims=dims,
        value=value,
        keep=_predicate(measure.where),
        windows=windows,
        money=money,
        batched=measure.kind in {"sum", "count"} and set(windows) <= BATCHED_WINDOWS,
        daily="1d" in windows,
    )


def _predicate(where: Where | None) -> Callable[[Envelope], bool] | None:
    if where is None:
        return None
    get = operator.attrgetter(where.field)
    if where.op == "present":
        return lambda event: get(event) is not None
    if where.op == "le_field":
        other = operator.attrgetter(str(where.value))
        return lambda event: get(event) <= other(event)
    bound: Any = where.value
    compare = operator.ge if where.op == ">=" else operator.le
    return lambda event: (v := get(event)) is not None and bool(compare(v, bound))
