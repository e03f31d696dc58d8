"""Smaller catalogs for `pulse bench --catalog NAME`, cut from the real one (never a copy).

`revenue-orders` keeps the `revenue` and `orders` KPIs per business unit and region at 1m and the
measures they read: the job `make bench-peers` gives Bytewax and Quix Streams, so that kpi-pulse
is compared on the same work. Every other part of the worker (decode, dedupe, currency
conversion, changelog, detection as the settings say) stays as it is.
"""

from __future__ import annotations

from dataclasses import replace

from streams.core import CATALOG, Catalog
from streams.errors import ConfigError

BENCH_CATALOGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "revenue-orders": (("revenue", "orders"), ("1m",)),
}
"""Name → (KPIs kept, windows kept)."""
CATALOG_NAMES = ("full", *BENCH_CATALOGS)


def select(catalog: Catalog, kpis: tuple[str, ...], windows: tuple[str, ...]) -> Catalog:
    """`catalog` with only `kpis`, each kept in only `windows` (of its own), and only the
    measures they read. Raises `ConfigError` naming a KPI that is not there or a window none of
    them has. A formula KPI needs the KPIs it reads listed too (`compile_catalog` says so)."""
    by_name = {k.name: k for k in catalog.kpis}
    missing = [name for name in kpis if name not in by_name]
    if missing:
        raise ConfigError(f"bench catalog: no KPI {missing[0]!r} in the catalog")
    kept = tuple(
        replace(by_name[name], windows=tuple(w for w in by_name[name].windows if w in windows))
        for name in kpis
    )
    for kpi in kept:
        if not kpi.windows:
            raise ConfigError(f"bench catalog: KPI {kpi.name!r} has none of the windows {windows}")
    read = {m for kpi in kept for m in (*kpi.numerator, *(kpi.denominator or {}))}
    return Catalog(tuple(m for m in catalog.measures if m.name in read), kept)


def bench_catalog(name: str) -> Catalog:
    """The catalog `pulse bench --catalog NAME` runs ("full": the worker's own)."""
    if name == "full":
        return CATALOG
    if name not in BENCH_CATALOGS:
        raise ConfigError(f"bench catalog: {name!r} is not one of {', '.join(CATALOG_NAMES)}")
    kpis, windows = BENCH_CATALOGS[name]
    return select(CATALOG, kpis, windows)
