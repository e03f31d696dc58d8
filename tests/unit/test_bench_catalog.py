"""`pulse bench --catalog`: smaller catalogs cut from the real one, checked like it."""

from __future__ import annotations

import pytest

from streams.core import CATALOG, compile_catalog
from streams.errors import ConfigError
from streams.settings import Settings
from streams.tools.bench_catalog import bench_catalog, select
from streams.tools.bench_step import END, TOPIC, records
from streams.worker.config import state_config
from streams.worker.worker import Worker


def test_revenue_orders_keeps_two_kpis_at_1m_and_the_measures_they_read() -> None:
    catalog = bench_catalog("revenue-orders")
    assert [(k.name, k.windows) for k in catalog.kpis] == [
        ("revenue", ("1m",)),
        ("orders", ("1m",)),
    ]
    assert [m.name for m in catalog.measures] == ["revenue", "orders"]
    # The real definitions, not copies: same dimensions, events and signs.
    real = {k.name: k for k in CATALOG.kpis}
    assert all(k.dims == real[k.name].dims == ("business_unit", "region") for k in catalog.kpis)
    compiled = compile_catalog(catalog)
    assert compiled.storage_windows == {"revenue": ("1m",), "orders": ("1m",)}
    assert set(compiled.by_event) == {"order_placed", "order_cancelled", "refund_issued"}


def test_the_full_catalog_is_the_worker_s_own() -> None:
    assert bench_catalog("full") is CATALOG
    settings = Settings(kafka_bootstrap="127.0.0.1:1", input_topics=("t",))
    assert set(state_config(settings).catalog.kpis) == {k.name for k in CATALOG.kpis}
    small = state_config(settings, bench_catalog("revenue-orders"))
    assert set(small.catalog.kpis) == {"revenue", "orders"}


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda: bench_catalog("everything"), "'everything' is not one of full, revenue-orders"),
        (lambda: select(CATALOG, ("revenu",), ("1m",)), "no KPI 'revenu'"),
        (lambda: select(CATALOG, ("revenue",), ("2m",)), "KPI 'revenue' has none of the windows"),
    ],
)
def test_a_bad_cut_fails_naming_it(cut: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cut()  # type: ignore[operator]


def test_a_worker_on_revenue_orders_keeps_only_those_kpis_at_1m() -> None:
    """The bench's first 20k events (enough event time for windows to close) through a worker's
    batch step, no broker: every KPI value it shows is revenue or orders, 1m, per unit, region."""
    settings = Settings(detection=False, kafka_bootstrap="127.0.0.1:1", input_topics=(TOPIC,))
    by_tp = records(20000, settings)
    worker = Worker(settings, "127.0.0.1:1", bench_catalog("revenue-orders"))  # never connected
    for tp in by_tp:
        worker.state.assign((tp.topic, tp.partition))
    now = END.timestamp()
    worker.step.close(worker.step.read(by_tp, now), now, now)
    values = worker.state.latest_values()
    assert {v.kpi for v in values} == {"revenue", "orders"}
    assert {v.window for v in values} == {"1m"}
    assert {tuple(name for name, _ in v.labels) for v in values} == {("business_unit", "region")}
